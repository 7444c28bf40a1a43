import { chooseEngine } from '../engines/detect.js';
import { readRepoConfig } from '../repo/config.js';
import { FORMAT_VERSION, type Layout } from '../repo/layout.js';
import { readRepoId } from '../repo/repoFiles.js';
import { listSnapshotIds } from '../repo/snapshots.js';
import { isDetached, listWorktreeNames, readWorktreeConfig } from '../repo/worktreeConfig.js';
import type { WorktreeInfo } from '../worktree/manageWorktrees.js';

export interface InfoResult {
  repo_root: string;
  repo_id: string;
  format_version: number;
  snapshot_engine: string;
  engine_source: string;
  total_snapshots: number;
  total_worktrees: number;
  worktree?: WorktreeInfo;
}

export async function info(layout: Layout, worktree?: string): Promise<InfoResult> {
  const config = await readRepoConfig(layout);
  const choice = chooseEngine(layout.tmp, config.default_engine);
  return {
    repo_root: layout.root,
    repo_id: readRepoId(layout),
    format_version: FORMAT_VERSION,
    snapshot_engine: choice.engine.name,
    engine_source: choice.source,
    total_snapshots: listSnapshotIds(layout).length,
    total_worktrees: listWorktreeNames(layout).length,
    ...(worktree ? { worktree: describe(layout, worktree) } : {}),
  };
}

/** As manageWorktrees' describeWorktree, without loading the worktree operations (start-up stays light). */
function describe(layout: Layout, name: string): WorktreeInfo {
  const c = readWorktreeConfig(layout, name);
  return { ...c, path: layout.payload(name), detached: isDetached(c) };
}

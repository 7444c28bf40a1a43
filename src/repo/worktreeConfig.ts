import fs from 'node:fs';
import { JvsError } from '../errors.js';
import { canonicalJson, isTimestamp, type JsonValue } from '../format/canonicalJson.js';
import { isSnapshotId } from '../format/snapshotId.js';
import { isCleanName } from '../format/controlNames.js';
import { writeFileAtomic } from '../fsutil/atomic.js';
import type { Layout } from './layout.js';
import { parseJsonObject } from '../format/parseJson.js';

export interface WorktreeConfig {
  name: string;
  created_at: string;
  base_snapshot_id?: string;
  head_snapshot_id?: string;
  latest_snapshot_id?: string;
}

/** Detached: the worktree shows a snapshot other than the newest of its lineage. */
export function isDetached(c: WorktreeConfig): boolean {
  return !!c.latest_snapshot_id && c.head_snapshot_id !== c.latest_snapshot_id;
}

function checkName(name: string): void {
  if (!isCleanName(name)) {
    throw new JvsError('E_NAME_INVALID', `${JSON.stringify(name)} is not a valid worktree name`, { hint: 'run `jvs worktree list` to see the worktrees' });
  }
}

export function readWorktreeConfig(layout: Layout, name: string): WorktreeConfig {
  checkName(name);
  const file = layout.worktreeConfig(name);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new JvsError('E_NOT_FOUND', `worktree '${name}' does not exist`, { hint: 'run `jvs worktree list` to see the worktrees' });
  }
  const bad = (why: string) =>
    new JvsError('E_DESCRIPTOR_CORRUPT', `config of worktree '${name}' is damaged: ${why}`, {
      hint: 'run `jvs doctor --strict` to inspect the repository',
      details: { file },
    });
  const c = parseJsonObject(text, bad);
  if (c.name !== name) throw bad(`name field ${JSON.stringify(c.name)} does not match the folder`);
  if (!isTimestamp(c.created_at)) throw bad('created_at is not a timestamp');
  for (const k of ['base_snapshot_id', 'head_snapshot_id', 'latest_snapshot_id'] as const) {
    if (c[k] !== undefined && c[k] !== '' && (typeof c[k] !== 'string' || !isSnapshotId(c[k] as string))) throw bad(`${k} is not a snapshot id`);
  }
  const out: WorktreeConfig = { name, created_at: c.created_at };
  for (const k of ['base_snapshot_id', 'head_snapshot_id', 'latest_snapshot_id'] as const) {
    if (c[k]) out[k] = c[k] as string;
  }
  return out;
}

export function writeWorktreeConfig(layout: Layout, c: WorktreeConfig): void {
  checkName(c.name);
  const clean: Record<string, JsonValue> = { name: c.name, created_at: c.created_at };
  for (const k of ['base_snapshot_id', 'head_snapshot_id', 'latest_snapshot_id'] as const) if (c[k]) clean[k] = c[k]!;
  fs.mkdirSync(layout.worktreeMetaDir(c.name), { recursive: true });
  writeFileAtomic(layout.worktreeConfig(c.name), canonicalJson(clean) + '\n');
}

export function listWorktreeNames(layout: Layout): string[] {
  try {
    return fs
      .readdirSync(layout.worktreesMeta, { withFileTypes: true })
      // A folder whose name JVS would never write is not a worktree (doctor reports it).
      .filter((d) => d.isDirectory() && isCleanName(d.name) && fs.existsSync(layout.worktreeConfig(d.name)))
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

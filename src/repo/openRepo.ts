import fs from 'node:fs';
import path from 'node:path';
import { JvsError } from '../errors.js';
import { CONTROL_DIR, Layout, MAIN_WORKTREE } from './layout.js';
import { checkFormatVersion } from './repoFiles.js';
import { isInside } from './names.js';

export interface RepoContext {
  layout: Layout;
  /** Worktree the caller stands in, if any (from `main/…` or `worktrees/<name>/…`). */
  worktree: string | undefined;
}

/** Walk up from `start` to the first folder holding `.jvs/`. */
export function findRepoRoot(start: string): string | undefined {
  let dir = path.resolve(start);
  for (;;) {
    const ctl = path.join(dir, CONTROL_DIR);
    try {
      if (fs.statSync(ctl).isDirectory() && fs.existsSync(path.join(ctl, 'format_version'))) return dir;
    } catch {
      /* keep walking */
    }
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** Which worktree a path inside the repository belongs to. */
export function worktreeOfPath(layout: Layout, p: string): string | undefined {
  const abs = path.resolve(p);
  if (isInside(layout.payload(MAIN_WORKTREE), abs)) return MAIN_WORKTREE;
  if (isInside(layout.otherWorktreePayloads, abs)) {
    const rel = path.relative(layout.otherWorktreePayloads, abs);
    const first = rel.split(path.sep)[0];
    return first || undefined;
  }
  return undefined;
}

export function openRepo(cwd: string = process.cwd(), repoOverride?: string): RepoContext {
  const root = repoOverride ? path.resolve(repoOverride) : findRepoRoot(cwd);
  if (!root || !fs.existsSync(path.join(root, CONTROL_DIR))) {
    throw new JvsError('E_NOT_A_REPO', `not inside a JVS repository (searched from ${repoOverride ?? cwd} upwards)`, {
      hint: 'run `jvs init <name>` to create one, or cd into an existing repository',
    });
  }
  const layout = new Layout(root);
  checkFormatVersion(layout);
  return { layout, worktree: worktreeOfPath(layout, cwd) };
}

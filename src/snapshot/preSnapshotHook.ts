import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { JvsError } from '../errors.js';
import type { Layout } from '../repo/layout.js';

const MAX_SHOWN = 4000;

/**
 * Run `.jvs/hooks/pre-snapshot` (if present) with the worktree as cwd. A non-zero exit
 * aborts the snapshot before anything is written: a failed pipeline stage never
 * produces a snapshot. Runs before the repository lock is taken, so the hook may use
 * read-only jvs commands.
 */
export function runPreSnapshotHook(layout: Layout, worktree: string, note: string | undefined): { ran: boolean } {
  const hook = layout.preSnapshotHook();
  let st: fs.Stats;
  try {
    st = fs.statSync(hook);
  } catch {
    return { ran: false };
  }
  if (!st.isFile()) return { ran: false };
  if ((st.mode & 0o111) === 0) {
    throw new JvsError('E_HOOK_REJECTED', `the pre-snapshot hook ${hook} is not executable`, { hint: `run \`chmod +x ${hook}\`, or remove it` });
  }
  const r = spawnSync(hook, [], {
    cwd: layout.payload(worktree),
    env: { ...process.env, JVS_REPO_ROOT: layout.root, JVS_WORKTREE: worktree, JVS_SNAPSHOT_NOTE: note ?? '' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 16 << 20,
  });
  if (r.error) {
    throw new JvsError('E_HOOK_REJECTED', `the pre-snapshot hook could not run: ${r.error.message}`, { hint: `check the hook's #! line and permissions: ${hook}` });
  }
  if (r.status !== 0) {
    const err = (r.stderr || r.stdout || '').trim();
    const shown = err.length > MAX_SHOWN ? `${err.slice(0, MAX_SHOWN)}…` : err;
    throw new JvsError('E_HOOK_REJECTED', `the pre-snapshot hook refused the snapshot (exit ${r.status ?? r.signal})${shown ? `:\n${shown}` : ''}`, {
      hint: 'fix what the hook reports and snapshot again; nothing was published',
      details: { exit_code: r.status, stderr: err.slice(0, MAX_SHOWN) },
    });
  }
  return { ran: true };
}

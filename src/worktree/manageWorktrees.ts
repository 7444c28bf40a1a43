import fs from 'node:fs';
import { JvsError } from '../errors.js';
import { walkTree } from '../fsutil/walk.js';
import { fsyncDir } from '../fsutil/atomic.js';
import { appendAudit } from '../repo/audit.js';
import { MAIN_WORKTREE, READY_FILE, type Layout } from '../repo/layout.js';
import { compressedManifest } from '../verify/compressedPayload.js';
import { withRepoLock, withWorktreeLock } from '../repo/lock.js';
import { validateName } from '../repo/names.js';
import { isDetached, listWorktreeNames, readWorktreeConfig, writeWorktreeConfig } from '../repo/worktreeConfig.js';
import { assertNewWorktreeName } from './forkWorktree.js';

export interface WorktreeInfo {
  name: string;
  path: string;
  created_at: string;
  base_snapshot_id?: string;
  head_snapshot_id?: string;
  latest_snapshot_id?: string;
  detached: boolean;
}

export function describeWorktree(layout: Layout, name: string): WorktreeInfo {
  const c = readWorktreeConfig(layout, name);
  return { ...c, path: layout.payload(name), detached: isDetached(c) };
}

export function listWorktrees(layout: Layout): WorktreeInfo[] {
  return listWorktreeNames(layout).map((n) => describeWorktree(layout, n));
}

export function worktreePath(layout: Layout, raw: string): string {
  const name = validateName(raw, 'worktree');
  readWorktreeConfig(layout, name);
  return layout.payload(name);
}

export function renameWorktree(layout: Layout, rawOld: string, rawNew: string, lockWaitMs?: number): { from: string; to: string; path: string } {
  const lockOpts = { waitMs: lockWaitMs, command: 'worktree rename' };
  // Both names' worktree locks: no operation runs on the worktree while it moves.
  return withWorktreeLock(layout, [validateName(rawOld, 'worktree'), validateName(rawNew, 'worktree')], lockOpts, () => withRepoLock(layout, lockOpts, () => {
    const from = validateName(rawOld, 'worktree');
    if (from === MAIN_WORKTREE) {
      throw new JvsError('E_NAME_INVALID', "the 'main' worktree cannot be renamed", { hint: 'fork it instead: `jvs worktree fork <new-name>`' });
    }
    const c = readWorktreeConfig(layout, from);
    const to = assertNewWorktreeName(layout, rawNew);
    // Payload first, then the control entry: a crash between leaves a payload that
    // doctor can match by its config's name.
    fs.renameSync(layout.payload(from), layout.payload(to));
    fs.renameSync(layout.worktreeMetaDir(from), layout.worktreeMetaDir(to));
    writeWorktreeConfig(layout, { ...c, name: to });
    fsyncDir(layout.worktreesMeta);
    appendAudit(layout, { event_type: 'worktree_rename', worktree_name: to, details: { from, to } });
    return { from, to, path: layout.payload(to) };
  }));
}

/**
 * True when the payload still matches its head snapshot by a stat walk (entry set,
 * types, sizes, modes, mtimes). Cheap; used to refuse removing unsaved work.
 */
export function payloadMatchesHead(layout: Layout, name: string, headId: string | undefined): boolean {
  // A root .READY is the reference's marker copy, never payload.
  const payload = walkTree(layout.payload(name), { include: (rel) => rel !== READY_FILE }).entries;
  if (!headId) return payload.length === 0;
  // A compressed head is compared as the tree it decompresses to.
  const logical = compressedManifest(layout, headId);
  const snap = logical
    ? logical.map((m) => ({ rel: m.rel, type: m.type, size: BigInt(m.size), mtimeNs: m.mtimeNs, perm: m.mode }))
    : walkTree(layout.snapshotDir(headId), { include: (rel) => rel !== READY_FILE }).entries.map((e) => ({ rel: e.rel, type: e.type, size: e.stat.size, mtimeNs: e.stat.mtimeNs, perm: Number(e.stat.mode) & 0o7777 }));
  if (snap.length !== payload.length) return false;
  const byRel = new Map(snap.map((e) => [e.rel, e]));
  return payload.every((p) => {
    const s = byRel.get(p.rel);
    return !!s && s.type === p.type && (p.type !== 'file' || (s.size === p.stat.size && s.mtimeNs === p.stat.mtimeNs)) && (p.type === 'symlink' || s.perm === (Number(p.stat.mode) & 0o7777));
  });
}

export function removeWorktree(layout: Layout, raw: string, force: boolean, lockWaitMs?: number): { name: string } {
  const lockOpts = { waitMs: lockWaitMs, command: 'worktree remove' };
  return withWorktreeLock(layout, [validateName(raw, 'worktree')], lockOpts, () => withRepoLock(layout, lockOpts, () => {
    const name = validateName(raw, 'worktree');
    if (name === MAIN_WORKTREE) {
      throw new JvsError('E_NAME_INVALID', "the 'main' worktree cannot be removed", { hint: 'remove the whole repository folder if you no longer need it' });
    }
    const c = readWorktreeConfig(layout, name);
    if (!force && fs.existsSync(layout.payload(name)) && !payloadMatchesHead(layout, name, c.head_snapshot_id)) {
      throw new JvsError('E_ALREADY_EXISTS', `worktree '${name}' has changes that are not in a snapshot`, {
        hint: `snapshot them first (cd ${layout.payload(name)} && jvs snapshot "note"), or run \`jvs worktree remove ${name} --force\``,
      });
    }
    // Control entry first: once it is gone the worktree no longer exists, and a
    // leftover payload folder is plain data that doctor reports.
    fs.rmSync(layout.worktreeMetaDir(name), { recursive: true, force: true });
    fsyncDir(layout.worktreesMeta);
    fs.rmSync(layout.payload(name), { recursive: true, force: true });
    appendAudit(layout, { event_type: 'worktree_remove', worktree_name: name, details: { head_snapshot_id: c.head_snapshot_id ?? '' } });
    return { name };
  }));
}

import type { IndexDb } from './indexDb.js';

/*
 * Whether extended attributes may be present, per snapshot and per worktree state, so
 * a restore can skip reading the attributes of files the worktree state vouches for.
 *
 * A vouched file (its stat, ctime included, is what the state recorded) holds the
 * attributes the state's basis snapshot holds at that path: a snapshot copies them
 * from the worktree (or links the parent's file, whose attributes are equal), and a
 * restore sets them, and any later change to them moves the ctime. So when neither the
 * target snapshot nor the worktree's basis has any attribute on any entry, a vouched
 * file needs no look; otherwise the restore reads and sets them for every entry.
 *
 * Only a definite "none" ('0') is trusted; a missing note (older snapshots, a rebuilt
 * index, a state written by something that did not note it) reads as "maybe".
 */
const snapKey = (id: string) => `xattrs:snapshot:${id}`;
const wtKey = (name: string) => `xattrs:worktree:${name}`;

export function snapshotMayHoldXattrs(idx: IndexDb | undefined, id: string | undefined): boolean {
  return !id || idx?.getNote(snapKey(id)) !== '0';
}

export function noteSnapshotXattrs(idx: IndexDb | undefined, id: string, may: boolean): void {
  idx?.setNote(snapKey(id), may ? '1' : '0');
}

/** Whether the files the worktree state (with this basis) vouches for may hold attributes. */
export function worktreeMayHoldXattrs(idx: IndexDb | undefined, name: string, basis: string | undefined): boolean {
  return !basis || idx?.getNote(wtKey(name)) !== `${basis}:0`;
}

export function noteWorktreeXattrs(idx: IndexDb | undefined, name: string, basis: string, may: boolean): void {
  idx?.setNote(wtKey(name), `${basis}:${may ? 1 : 0}`);
}

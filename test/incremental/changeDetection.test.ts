import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isUnchanged } from '../../src/index/changeDetect.js';
import type { IndexedEntry } from '../../src/index/manifestCodec.js';
import { readTree, writeFiles } from '../helpers/tmp.js';
import { newRepo, restore, snap, status, verifyAll } from './helpers.js';

const snapFile = (snaps: string, id: string, rel: string) => fs.readFileSync(path.join(snaps, id, rel), 'utf8');

describe('the racy-clean rule', () => {
  const rec: IndexedEntry = { rel: 'f', type: 'file', mode: 0o644, size: 3, mtimeNs: 1_000n, ctimeNs: 2_000n, dev: 1n, ino: 7n, contentHash: 'x' };
  const now = (o: Partial<{ mode: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint; ino: bigint; dev: bigint }> = {}) => ({
    mode: 0o100644n, size: 3n, mtimeNs: 1_000n, ctimeNs: 2_000n, ino: 7n, dev: 1n, ...o,
    isFile: () => true, isDirectory: () => false, isSymbolicLink: () => false,
  });

  it('trusts an entry recorded strictly before the clock probe whose stat is unchanged', () => {
    expect(isUnchanged(rec, 2_001n, now())).toBe(true);
  });

  it('does not trust an entry whose ctime is not older than the probe, even with an identical stat', () => {
    expect(isUnchanged(rec, 2_000n, now())).toBe(false);
    expect(isUnchanged(rec, 1_500n, now())).toBe(false);
  });

  it('does not trust an entry whose mtime is in the future of the probe', () => {
    expect(isUnchanged({ ...rec, mtimeNs: 5_000n }, 3_000n, now({ mtimeNs: 5_000n }))).toBe(false);
  });

  it('notices a change in any recorded stat field', () => {
    for (const o of [{ size: 4n }, { mtimeNs: 999n }, { ctimeNs: 2_001n }, { ino: 8n }, { dev: 2n }, { mode: 0o100600n }]) {
      expect(isUnchanged(rec, 9_999n, now(o))).toBe(false);
    }
  });
});

describe('snapshots catch every kind of change without re-reading unchanged files', () => {
  it('a file rewritten with the same size and the same mtime is caught (status and snapshot)', () => {
    const { main, snaps } = newRepo();
    writeFiles(main, { 'f.txt': 'aaaa', 'g.txt': 'gg' });
    fs.utimesSync(path.join(main, 'f.txt'), 1_000_000_000, 1_000_000_000);
    const s1 = snap(main, 'one');
    fs.writeFileSync(path.join(main, 'f.txt'), 'bbbb');
    fs.utimesSync(path.join(main, 'f.txt'), 1_000_000_000, 1_000_000_000);
    expect(status(main).modified).toEqual(['f.txt']);
    const s2 = snap(main, 'two');
    expect(snapFile(snaps, s2.snapshot_id, 'f.txt')).toBe('bbbb');
    expect(snapFile(snaps, s1.snapshot_id, 'f.txt')).toBe('aaaa');
    expect(s2.payload_root_hash).not.toBe(s1.payload_root_hash);
    expect(verifyAll(main).severity).toBe('ok');
  });

  it('a file replaced by a directory and back is snapshotted and restored each way', () => {
    const { main, snaps } = newRepo();
    writeFiles(main, { 'x': 'file', 'keep': 'k' });
    const s1 = snap(main, 'file');
    fs.rmSync(path.join(main, 'x'));
    writeFiles(main, { 'x/inner.txt': 'inside' });
    expect(status(main)).toMatchObject({ modified: ['x/'], added: ['x/inner.txt'] });
    const s2 = snap(main, 'dir');
    expect(fs.statSync(path.join(snaps, s2.snapshot_id, 'x')).isDirectory()).toBe(true);
    fs.rmSync(path.join(main, 'x'), { recursive: true });
    fs.writeFileSync(path.join(main, 'x'), 'file again');
    const s3 = snap(main, 'file again');
    expect(snapFile(snaps, s3.snapshot_id, 'x')).toBe('file again');
    restore(main, s2.snapshot_id);
    expect(readTree(main)).toEqual({ 'keep': 'k', 'x/': '', 'x/inner.txt': 'inside' });
    restore(main, s1.snapshot_id);
    expect(readTree(main)).toEqual({ 'keep': 'k', 'x': 'file' });
    restore(main, 'HEAD');
    expect(readTree(main)).toEqual({ 'keep': 'k', 'x': 'file again' });
    expect(verifyAll(main).severity).toBe('ok');
  });

  it('a permission-only change reaches the new snapshot and leaves the parent snapshot as it was', () => {
    const { main, snaps } = newRepo();
    writeFiles(main, { 'run.sh': '#!/bin/sh\n', 'other': 'o' });
    fs.chmodSync(path.join(main, 'run.sh'), 0o644);
    const s1 = snap(main, 'one');
    fs.chmodSync(path.join(main, 'run.sh'), 0o755);
    expect(status(main).modified).toEqual(['run.sh']);
    const s2 = snap(main, 'two');
    expect(fs.statSync(path.join(snaps, s2.snapshot_id, 'run.sh')).mode & 0o777).toBe(0o755);
    expect(fs.statSync(path.join(snaps, s1.snapshot_id, 'run.sh')).mode & 0o777).toBe(0o644);
    expect(s2.payload_root_hash).not.toBe(s1.payload_root_hash);
    restore(main, s1.snapshot_id);
    expect(fs.statSync(path.join(main, 'run.sh')).mode & 0o777).toBe(0o644);
    expect(verifyAll(main).severity).toBe('ok');
  });

  it('set-id and sticky bits survive a snapshot and a restore of a copied file', () => {
    const { main, snaps } = newRepo();
    writeFiles(main, { 'tool': 'x', 'shared/f': 'y' });
    fs.chmodSync(path.join(main, 'tool'), 0o4755);
    fs.chmodSync(path.join(main, 'shared'), 0o1777);
    const s1 = snap(main, 'modes');
    expect(fs.statSync(path.join(snaps, s1.snapshot_id, 'tool')).mode & 0o7777).toBe(0o4755);
    expect(fs.statSync(path.join(snaps, s1.snapshot_id, 'shared')).mode & 0o7777).toBe(0o1777);
    fs.rmSync(path.join(main, 'tool'));
    restore(main, 'HEAD');
    expect(fs.statSync(path.join(main, 'tool')).mode & 0o7777).toBe(0o4755);
  });

  it('a renamed file shows as removed + added and the snapshot holds it under its new name only', () => {
    const { main, snaps } = newRepo();
    writeFiles(main, { 'old-name.txt': 'payload', 'dir/b': 'b' });
    const s1 = snap(main, 'one');
    fs.renameSync(path.join(main, 'old-name.txt'), path.join(main, 'dir/new-name.txt'));
    expect(status(main)).toMatchObject({ added: ['dir/new-name.txt'], removed: ['old-name.txt'], modified: [] });
    const s2 = snap(main, 'two');
    expect(fs.existsSync(path.join(snaps, s2.snapshot_id, 'old-name.txt'))).toBe(false);
    expect(snapFile(snaps, s2.snapshot_id, 'dir/new-name.txt')).toBe('payload');
    restore(main, s1.snapshot_id);
    expect(readTree(main)).toEqual({ 'old-name.txt': 'payload', 'dir/': '', 'dir/b': 'b' });
    expect(verifyAll(main).severity).toBe('ok');
  });

  it('a symlink retargeted is caught', () => {
    const { main, snaps } = newRepo();
    writeFiles(main, { a: 'a', b: 'b' });
    fs.symlinkSync('a', path.join(main, 'l'));
    snap(main, 'one');
    fs.rmSync(path.join(main, 'l'));
    fs.symlinkSync('b', path.join(main, 'l'));
    expect(status(main).modified).toEqual(['l']);
    const s2 = snap(main, 'two');
    expect(fs.readlinkSync(path.join(snaps, s2.snapshot_id, 'l'))).toBe('b');
  });
});

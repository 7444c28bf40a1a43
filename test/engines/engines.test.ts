import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jvs, jvsOk } from '../helpers/cli.js';
import { canClone, extentsShared, type LoopFs, loopFsMissing, mountLoopFs } from '../helpers/loopfs.js';
import { itWith } from '../helpers/prereq.js';
import { readTree, tmpDir, writeFiles } from '../helpers/tmp.js';

const BIG = 'reflink me '.repeat(100_000); // ~1.1 MB, several extents worth

describe('reflink-copy engine on a real XFS loop mount (mkfs.xfs -m reflink=1)', () => {
  const missing = loopFsMissing('xfs');
  let xfs: LoopFs | undefined;
  beforeAll(() => {
    if (!missing) xfs = mountLoopFs('xfs', 512);
  });
  afterAll(() => xfs?.unmount());

  itWith('XFS loop mount', missing, 'auto-detects reflink-copy, records it, and the snapshot shares extents with the worktree', () => {
    const base = xfs!.mountpoint;
    jvsOk(['init', 'repo'], { cwd: base });
    const main = path.join(base, 'repo/main');
    writeFiles(main, { 'big.bin': BIG, 'dir/small': 's' });
    fs.symlinkSync('big.bin', path.join(main, 'link'));
    expect(jvsOk(['info', '--json'], { cwd: main }).json().snapshot_engine).toBe('reflink-copy');
    const s = jvsOk(['snapshot', 'on xfs', '--json'], { cwd: main }).json();
    expect(s.engine).toBe('reflink-copy');
    const desc = JSON.parse(fs.readFileSync(path.join(base, 'repo/.jvs/descriptors', `${s.snapshot_id}.json`), 'utf8'));
    expect(desc.engine).toBe('reflink-copy');
    const snapBig = path.join(base, 'repo/.jvs/snapshots', s.snapshot_id, 'big.bin');
    expect(fs.statSync(snapBig).ino).not.toBe(fs.statSync(path.join(main, 'big.bin')).ino);
    expect(extentsShared(snapBig)).toBe(true);

    // Fork and restore also clone.
    const fork = jvsOk(['worktree', 'fork', 'f1', '--json'], { cwd: main }).json();
    expect(extentsShared(path.join(fork.path, 'big.bin'))).toBe(true);
    expect(readTree(fork.path)).toEqual(readTree(main));
    jvsOk(['verify', '--all'], { cwd: main });
  });

  itWith('XFS loop mount', missing, 'an incremental reflink snapshot clones unchanged files without reading them, keeps their times and modes, and verifies', () => {
    const base = xfs!.mountpoint;
    jvsOk(['init', 'repo3'], { cwd: base });
    const main = path.join(base, 'repo3/main');
    const files: Record<string, string> = { 'big.bin': BIG };
    for (let i = 0; i < 40; i++) files[`d${i % 4}/f${i}.txt`] = `file ${i}`;
    writeFiles(main, files);
    fs.chmodSync(path.join(main, 'd1/f1.txt'), 0o600);
    fs.utimesSync(path.join(main, 'd2/f2.txt'), new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
    jvsOk(['snapshot', 'one'], { cwd: main });
    fs.writeFileSync(path.join(main, 'd0/f0.txt'), 'changed');
    const s2 = jvsOk(['snapshot', 'two', '--json'], { cwd: main }).json();
    expect(s2.engine).toBe('reflink-copy');
    expect(s2.incremental).toMatchObject({ linked: 0, compared: 0, copied: 41 });
    const snap = path.join(base, 'repo3/.jvs/snapshots', s2.snapshot_id);
    expect(extentsShared(path.join(snap, 'big.bin'))).toBe(true);
    expect(fs.statSync(path.join(snap, 'd1/f1.txt')).mode & 0o7777).toBe(0o600);
    expect(fs.statSync(path.join(snap, 'd2/f2.txt')).mtime.toISOString()).toBe('2001-02-03T04:05:06.000Z');
    const { '.READY': _ready, ...payload } = readTree(snap);
    expect(payload).toEqual(readTree(main));
    expect(jvsOk(['verify', s2.snapshot_id, '--json'], { cwd: main }).code).toBe(0);
  });

  itWith('XFS loop mount', missing, 'JVS_SNAPSHOT_ENGINE=copy on XFS still records copy', () => {
    const base = xfs!.mountpoint;
    jvsOk(['init', 'repo2'], { cwd: base });
    const main = path.join(base, 'repo2/main');
    writeFiles(main, { f: 'x' });
    const s = jvsOk(['snapshot', 'forced copy', '--json'], { cwd: main, env: { JVS_SNAPSHOT_ENGINE: 'copy' } }).json();
    expect(s.engine).toBe('copy');
  });
});

describe('copy engine on the local disk', () => {
  it('is chosen where reflinks are refused, and is recorded in the descriptor', () => {
    const dir = tmpDir();
    // /tmp here is ext4, which cannot clone; prove it rather than assume it.
    const clones = canClone(dir);
    jvsOk(['init', 'repo'], { cwd: dir });
    const main = path.join(dir, 'repo/main');
    writeFiles(main, { 'f.txt': BIG });
    const s = jvsOk(['snapshot', 'local', '--json'], { cwd: main }).json();
    expect(s.engine).toBe(clones ? 'reflink-copy' : 'copy');
    const snapFile = path.join(dir, 'repo/.jvs/snapshots', s.snapshot_id, 'f.txt');
    expect(fs.readFileSync(snapFile, 'utf8')).toBe(BIG);
    expect(fs.statSync(snapFile).ino).not.toBe(fs.statSync(path.join(main, 'f.txt')).ino);
  });

  it('an unknown JVS_SNAPSHOT_ENGINE is an error, and reflink-copy where it cannot work is refused, not swapped', () => {
    const dir = tmpDir();
    jvsOk(['init', 'repo'], { cwd: dir });
    const main = path.join(dir, 'repo/main');
    writeFiles(main, { f: 'x' });
    const bad = jvs(['snapshot', 'x', '--json'], { cwd: main, env: { JVS_SNAPSHOT_ENGINE: 'turbo' } });
    expect(bad.code).toBe(2);
    expect(bad.json().error.class).toBe('E_ENGINE_UNKNOWN');
    expect(bad.json().error.hint).toContain('copy');
    if (!canClone(dir)) {
      const refused = jvs(['snapshot', 'x', '--json'], { cwd: main, env: { JVS_SNAPSHOT_ENGINE: 'reflink-copy' } });
      expect(refused.json().error.class).toBe('E_ENGINE_UNAVAILABLE');
    }
    expect(fs.readdirSync(path.join(dir, 'repo/.jvs/descriptors'))).toEqual([]);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { native } from '../../src/native/native.js';
import { jvsOk } from '../helpers/cli.js';
import { readTree, writeFiles } from '../helpers/tmp.js';
import { bytes, COPY, fileBytes, inodes, newRepo, restore, snap, stamp, status, verifyAll } from './helpers.js';

describe('copy engine: snapshots share unchanged files, worktrees never do', () => {
  it('an unchanged file is the same inode in consecutive snapshots; a changed one is not', () => {
    const { main, snaps } = newRepo();
    writeFiles(main, { 'same.txt': 'unchanged', 'edit.txt': 'v1', 'sub/deep.txt': 'deep' });
    const s1 = snap(main, 'one');
    fs.writeFileSync(path.join(main, 'edit.txt'), 'v2!');
    const s2 = snap(main, 'two');
    const ino = (id: string, rel: string) => fs.statSync(path.join(snaps, id, rel)).ino;
    expect(ino(s2.snapshot_id, 'same.txt')).toBe(ino(s1.snapshot_id, 'same.txt'));
    expect(ino(s2.snapshot_id, 'sub/deep.txt')).toBe(ino(s1.snapshot_id, 'sub/deep.txt'));
    expect(ino(s2.snapshot_id, 'edit.txt')).not.toBe(ino(s1.snapshot_id, 'edit.txt'));
    expect(s2.incremental).toMatchObject({ linked: 2, copied: 1 });
    expect(verifyAll(main).severity).toBe('ok');
  });

  it('a parent file that cannot be linked (gone from the parent snapshot) is copied from the worktree instead, and the snapshot is whole', () => {
    const { main, snaps } = newRepo();
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`d${i % 7}/f${i}.txt`] = `file ${i}`; // enough for the background link threads
    writeFiles(main, files);
    const s1 = snap(main, 'one');
    fs.rmSync(path.join(snaps, s1.snapshot_id, 'd3/f3.txt')); // damage the parent: its link source is gone
    fs.writeFileSync(path.join(main, 'd0/f0.txt'), 'changed');
    const s2 = snap(main, 'two');
    expect(s2.incremental).toMatchObject({ linked: 298, copied: 2 });
    expect(fs.readFileSync(path.join(snaps, s2.snapshot_id, 'd3/f3.txt'), 'utf8')).toBe('file 3');
    const v = jvsOk(['verify', s2.snapshot_id, '--json'], { cwd: main }).json();
    expect(v.severity ?? v.results?.[0]?.severity).toBe('ok');
  });

  it('restored and forked worktrees hold no inode of any snapshot', () => {
    const { root, main, snaps } = newRepo();
    writeFiles(main, { 'a': 'a', 'b/c': 'c', 'd': 'd' });
    const s1 = snap(main, 'one');
    fs.writeFileSync(path.join(main, 'a'), 'A');
    fs.rmSync(path.join(main, 'd'));
    snap(main, 'two');
    restore(main, s1.snapshot_id);
    const fork = jvsOk(['worktree', 'fork', s1.snapshot_id, 'exp', '--json'], { cwd: main, env: COPY }).json();
    const snapInodes = inodes(snaps);
    for (const dir of [main, fork.path]) {
      for (const [ino, p] of inodes(dir)) expect(snapInodes.has(ino), `${p} is a snapshot inode`).toBe(false);
    }
    expect(readTree(fork.path)).toEqual(readTree(main));
    expect(fs.existsSync(path.join(root, 'worktrees/exp'))).toBe(true);
  });

  it('user hard links stay links inside every snapshot and after restore, and nothing else shares an inode within a snapshot', () => {
    const { main, snaps } = newRepo();
    writeFiles(main, { 'orig': 'shared', 'lonely': 'alone', 'x': 'x' });
    fs.linkSync(path.join(main, 'orig'), path.join(main, 'alias'));
    const s1 = snap(main, 'one');
    fs.writeFileSync(path.join(main, 'x'), 'xx');
    const s2 = snap(main, 'two');
    for (const s of [s1, s2]) {
      const dir = path.join(snaps, s.snapshot_id);
      const byIno = new Map<bigint, string[]>();
      const walk = (d: string, rel: string) => {
        for (const n of fs.readdirSync(d)) {
          if (n === '.READY') continue;
          const st = fs.lstatSync(path.join(d, n), { bigint: true });
          if (st.isFile()) byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), rel + n]);
        }
      };
      walk(dir, '');
      const groups = [...byIno.values()].filter((g) => g.length > 1).map((g) => g.sort());
      expect(groups).toEqual([['alias', 'orig']]);
    }
    fs.rmSync(path.join(main, 'alias'));
    fs.writeFileSync(path.join(main, 'orig'), 'changed');
    restore(main, s1.snapshot_id);
    expect(fs.statSync(path.join(main, 'alias')).ino).toBe(fs.statSync(path.join(main, 'orig')).ino);
    expect(fs.readFileSync(path.join(main, 'alias'), 'utf8')).toBe('shared');
    expect(verifyAll(main).severity).toBe('ok');
  });

  it('a user hard link broken by a copy that keeps the mtime (cp -p) does not come back through snapshot sharing', () => {
    const { main, snaps } = newRepo();
    writeFiles(main, { 'a.txt': 'same bytes', 'other': 'o' });
    fs.linkSync(path.join(main, 'a.txt'), path.join(main, 'c.txt'));
    snap(main, 'linked');
    // Break the link the way `cp -p c.txt tmp && mv tmp c.txt` does: same content, mode and mtime, new inode.
    const st = fs.statSync(path.join(main, 'c.txt'), { bigint: true });
    fs.copyFileSync(path.join(main, 'c.txt'), path.join(main, 'c.tmp'));
    native()!.lutimesNs(path.join(main, 'c.tmp'), st.atimeNs, st.mtimeNs);
    expect(fs.statSync(path.join(main, 'c.tmp'), { bigint: true }).mtimeNs).toBe(st.mtimeNs);
    fs.renameSync(path.join(main, 'c.tmp'), path.join(main, 'c.txt'));
    const s2 = snap(main, 'unlinked');
    const dir = path.join(snaps, s2.snapshot_id);
    expect(fs.statSync(path.join(dir, 'a.txt')).ino).not.toBe(fs.statSync(path.join(dir, 'c.txt')).ino);
    restore(main, s2.snapshot_id);
    expect(fs.statSync(path.join(main, 'a.txt')).ino).not.toBe(fs.statSync(path.join(main, 'c.txt')).ino);
    expect(verifyAll(main).severity).toBe('ok');
  });

  it('storage for a chain of snapshots grows with the bytes changed, not the bytes total', () => {
    const { main, snaps } = newRepo();
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 40; i++) files[`d${i % 4}/f${i}.bin`] = bytes(64 * 1024, i);
    for (const [rel, b] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(main, rel)), { recursive: true });
      fs.writeFileSync(path.join(main, rel), b);
    }
    snap(main, 'base');
    const base = fileBytes(snaps);
    expect(base).toBeGreaterThanOrEqual(40 * 64 * 1024);
    let changed = 0;
    for (let round = 0; round < 3; round++) {
      for (const i of [round, round + 10]) {
        const b = bytes(64 * 1024, 1000 + round * 100 + i);
        fs.writeFileSync(path.join(main, `d${i % 4}/f${i}.bin`), b);
        changed += b.length;
      }
      snap(main, `round ${round}`);
    }
    const growth = fileBytes(snaps) - base;
    expect(growth).toBeGreaterThanOrEqual(changed);
    expect(growth).toBeLessThanOrEqual(2 * changed);
    expect(verifyAll(main).severity).toBe('ok');
  });
});

describe('incremental restore', () => {
  it('rewrites only the files that differ: untouched files keep inode and ctime', () => {
    const { main } = newRepo();
    const content: Record<string, string> = {};
    for (let i = 0; i < 30; i++) content[`dir${i % 3}/file${i}.txt`] = `content ${i}\n`;
    writeFiles(main, content);
    const s1 = snap(main, 'one');
    fs.writeFileSync(path.join(main, 'dir0/file0.txt'), 'scribbled');
    fs.writeFileSync(path.join(main, 'dir1/file1.txt'), 'scribbled too, longer');
    fs.rmSync(path.join(main, 'dir2/file2.txt'));
    writeFiles(main, { 'stray.txt': 'agent output' });
    const before = new Map(Object.keys(content).filter((r) => fs.existsSync(path.join(main, r))).map((r) => [r, stamp(path.join(main, r))]));
    const r = restore(main, s1.snapshot_id);
    expect(r.files_written).toBe(3);
    expect(r.entries_removed).toBe(1);
    const { '.READY': _ready, ...snapshotTree } = readTree(path.join(path.dirname(main), '.jvs/snapshots', s1.snapshot_id));
    expect(readTree(main)).toEqual(snapshotTree);
    for (const [rel, st] of before) {
      if (rel === 'dir0/file0.txt' || rel === 'dir1/file1.txt') continue;
      expect(stamp(path.join(main, rel)), rel).toBe(st);
    }
  });

  it('a path the restore left alone (ignored at the time) is not vouched for afterwards', () => {
    const { main, snaps } = newRepo();
    writeFiles(main, { 'Library/cache.bin': 'old', 'a': 'a' });
    snap(main, 'one');
    // Ignored now, and changed: the restore must leave it alone, and must not record it
    // as holding the snapshot's content.
    writeFiles(main, { '.jvsignore': 'Library/\n', 'Library/cache.bin': 'new' });
    restore(main, 'HEAD');
    expect(fs.existsSync(path.join(main, '.jvsignore'))).toBe(false); // not in the snapshot
    expect(fs.readFileSync(path.join(main, 'Library/cache.bin'), 'utf8')).toBe('new');
    const s2 = snap(main, 'two');
    expect(fs.readFileSync(path.join(snaps, s2.snapshot_id, 'Library/cache.bin'), 'utf8')).toBe('new');
    expect(verifyAll(main).severity).toBe('ok');
  });

  it('after a restore the next snapshot links every file the restore did not write', () => {
    const { main } = newRepo();
    const content: Record<string, string> = {};
    for (let i = 0; i < 20; i++) content[`f${i}`] = `v${i}`;
    writeFiles(main, content);
    snap(main, 'one');
    fs.writeFileSync(path.join(main, 'f3'), 'scratch');
    restore(main, 'HEAD');
    fs.writeFileSync(path.join(main, 'f7'), 'real change');
    const s2 = snap(main, 'two');
    // f3 was written by the restore (racy: read once, equal to the parent → linked); f7 changed → copied.
    expect(s2.incremental).toMatchObject({ linked: 19, copied: 1 });
    expect(s2.incremental.compared).toBeLessThanOrEqual(1);
  });

  it('a fork records its files so its first snapshot links them all without reading', () => {
    const { main } = newRepo();
    writeFiles(main, { a: 'a', 'b/c': 'c', d: 'd' });
    snap(main, 'one');
    const fork = jvsOk(['worktree', 'fork', 'exp', '--json'], { cwd: main, env: COPY }).json();
    const s = jvsOk(['snapshot', 'in fork', '--json'], { cwd: fork.path, env: COPY }).json();
    expect(s.worktree_name).toBe('exp');
    expect(s.incremental).toMatchObject({ linked: 3, copied: 0 });
  });
});

describe('status', () => {
  it('reports added, modified and removed paths and reads no unchanged file', () => {
    const { main } = newRepo();
    writeFiles(main, { 'keep.txt': 'keep', 'mod.txt': 'abc', 'gone.txt': 'bye', 'dir/x': 'x' });
    snap(main, 'one');
    const clean = status(main);
    expect(clean).toMatchObject({ worktree: 'main', detached: false, clean: true, added: [], modified: [], removed: [], files_hashed: 0 });
    fs.writeFileSync(path.join(main, 'mod.txt'), 'xyz');
    fs.rmSync(path.join(main, 'gone.txt'));
    writeFiles(main, { 'new/file.txt': 'new' });
    const s = status(main);
    expect(s).toMatchObject({ clean: false, added: ['new/', 'new/file.txt'], modified: ['mod.txt'], removed: ['gone.txt'], total_added: 2, total_modified: 1, total_removed: 1 });
    expect(s.files_hashed).toBe(1);
    const human = jvsOk(['status'], { cwd: main }).stdout;
    expect(human).toContain('Changes since head: 2 added, 1 modified, 1 removed');
    expect(human).toMatch(/modified:\s+mod\.txt/);
  });

  it('says DETACHED after restoring an older snapshot, and leaves ignored paths out', () => {
    const { main } = newRepo();
    writeFiles(main, { '.jvsignore': 'Library/\n', 'a': '1' });
    const s1 = snap(main, 'one');
    writeFiles(main, { a: '2' });
    snap(main, 'two');
    restore(main, s1.snapshot_id);
    writeFiles(main, { 'Library/cache.bin': 'ignored' });
    const s = status(main);
    expect(s).toMatchObject({ detached: true, head_snapshot_id: s1.snapshot_id, clean: true });
    expect(jvsOk(['status'], { cwd: main }).stdout).toContain('DETACHED');
  });

  it('works before the first snapshot: everything is added', () => {
    const { main } = newRepo();
    writeFiles(main, { a: '1' });
    expect(status(main)).toMatchObject({ clean: false, added: ['a'] });
    expect(jvsOk(['status'], { cwd: main }).stdout).toContain('(no snapshots yet)');
  });
});

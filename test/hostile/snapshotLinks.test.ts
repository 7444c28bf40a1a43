import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFiles } from '../helpers/tmp.js';
import { newRepo, run, treeState, type Repo } from '../integrity/support.js';

/*
 * Issue 14, item 3 for snapshots: an incremental snapshot hard-links unchanged files
 * from its parent snapshot. Someone who can write `.jvs/` swaps a folder (or a file, or
 * the whole folder) of the parent snapshot for a symlink to an outside folder holding a
 * file with the same name, size and mtime. The new snapshot must never hard-link the
 * outside inode (its link count stays as it was) and must still hold the worktree's
 * bytes. Played on the three ways links are made: the addon's classify (the usual
 * path), the JavaScript decisions with the addon's link threads (JVS_NO_CLASSIFY=1) and
 * no addon at all (JVS_DISABLE_NATIVE=1).
 */

const MTIME = new Date('2026-01-02T03:04:05Z');

function ok(r: ReturnType<typeof run>) {
  expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
  return r;
}

/** Same length as the worktree's content, other bytes: a link to it would show in the new snapshot. */
const OUTSIDE = 'outside bytes!\n';
const INSIDE = 'inside  bytes!\n';

function setUp(env: Record<string, string>): { repo: Repo; s1: string; outside: string } {
  const repo = newRepo();
  expect(OUTSIDE.length).toBe(INSIDE.length);
  writeFiles(repo.main, { 'd/f.txt': INSIDE, 'h.txt': INSIDE, 'whole/w.txt': INSIDE, 'control/c.txt': INSIDE, 'n.txt': 'one\n' });
  for (const rel of ['d/f.txt', 'h.txt', 'whole/w.txt', 'control/c.txt']) fs.utimesSync(path.join(repo.main, rel), MTIME, MTIME);
  const s1 = ok(run(['snapshot', 'one', '--json'], repo.main, env)).json().snapshot_id as string;
  // The outside folder: same names, sizes and mtimes as the parent snapshot's files.
  const outside = path.join(path.dirname(repo.root), 'outside');
  writeFiles(outside, { 'f.txt': OUTSIDE, 'h.txt': OUTSIDE, 'd/f.txt': OUTSIDE, 'whole/w.txt': OUTSIDE, 'control/c.txt': OUTSIDE, 'n.txt': 'one\n' });
  for (const rel of ['f.txt', 'h.txt', 'd/f.txt', 'whole/w.txt', 'control/c.txt']) fs.utimesSync(path.join(outside, rel), MTIME, MTIME);
  return { repo, s1, outside };
}

/** ino and link count of every outside file: a hard link made to one of them shows here. */
function inodes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of ['f.txt', 'h.txt', 'd/f.txt', 'whole/w.txt', 'control/c.txt']) {
    const st = fs.lstatSync(path.join(dir, rel));
    out[rel] = `${st.ino}:${st.nlink}`;
  }
  return out;
}

const MODES: Array<[string, Record<string, string>]> = [
  ['the addon’s classify', {}],
  ['JavaScript decisions, addon links (JVS_NO_CLASSIFY=1)', { JVS_NO_CLASSIFY: '1' }],
  ['no addon (JVS_DISABLE_NATIVE=1)', { JVS_DISABLE_NATIVE: '1' }],
];

describe('issue 14: a snapshot never hard-links a file from outside the repository', () => {
  for (const [name, env] of MODES) {
    it(`${name}: a parent snapshot folder or file swapped for a symlink to an outside one is copied from the worktree, not linked`, () => {
      const { repo, s1, outside } = setUp(env);
      const parent = path.join(repo.ctl, 'snapshots', s1);
      // Control: an untouched unchanged file is linked from the parent (so the attack below meets the link path).
      const controlIno = fs.lstatSync(path.join(parent, 'control/c.txt')).ino;
      // The attack: a folder and a file of the parent snapshot become links out.
      fs.renameSync(path.join(parent, 'd'), path.join(repo.ctl, 'd.moved'));
      fs.symlinkSync(outside, path.join(parent, 'd'));
      fs.rmSync(path.join(parent, 'h.txt'));
      fs.symlinkSync(path.join(outside, 'h.txt'), path.join(parent, 'h.txt'));
      const before = inodes(outside);
      const outsideState = treeState(outside);

      writeFiles(repo.main, { 'n.txt': 'two\n' });
      const want = treeState(repo.main);
      const s2 = ok(run(['snapshot', 'two', '--json'], repo.main, env)).json().snapshot_id as string;
      const snap = path.join(repo.ctl, 'snapshots', s2);

      expect(inodes(outside)).toEqual(before);
      expect(treeState(outside)).toEqual(outsideState);
      expect(treeState(snap, (rel) => rel === '.READY')).toEqual(want);
      const outsideInos = new Set(Object.values(before).map((v) => v.split(':')[0]));
      for (const rel of ['d/f.txt', 'h.txt', 'whole/w.txt']) {
        expect(fs.lstatSync(path.join(snap, rel)).isFile()).toBe(true);
        expect(outsideInos.has(String(fs.lstatSync(path.join(snap, rel)).ino))).toBe(false);
      }
      expect(fs.lstatSync(path.join(snap, 'control/c.txt')).ino).toBe(controlIno);
      ok(run(['verify', s2, '--json'], repo.main, env));
    });

    it(`${name}: a parent snapshot whose whole folder is a symlink to an outside copy is not linked from`, () => {
      const { repo, s1, outside } = setUp(env);
      const parent = path.join(repo.ctl, 'snapshots', s1);
      fs.renameSync(parent, path.join(repo.ctl, 'parent.moved'));
      fs.symlinkSync(outside, parent);
      const before = inodes(outside);
      writeFiles(repo.main, { 'n.txt': 'two\n' });
      const want = treeState(repo.main);
      const s2 = ok(run(['snapshot', 'two', '--json'], repo.main, env)).json().snapshot_id as string;
      const snap = path.join(repo.ctl, 'snapshots', s2);
      expect(inodes(outside)).toEqual(before);
      expect(treeState(snap, (rel) => rel === '.READY')).toEqual(want);
      ok(run(['verify', s2, '--json'], repo.main, env));
    });
  }
});

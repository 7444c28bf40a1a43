import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IndexDb, snapshotOwner } from '../../src/index/indexDb.js';
import { Layout } from '../../src/repo/layout.js';
import { writeFiles } from '../helpers/tmp.js';
import { expectError, newRepo, run, snapshot, treeState, type Repo } from '../integrity/support.js';

/*
 * Issue 14, items 2-5: a user who can write the worktree or `.jvs/` tries to make
 * restore (and snapshot, fork, status) touch files outside the repository, or hand
 * back bytes other than the snapshot's. Each test makes the attack, then proves that
 * the folder outside the repository is exactly as before and that the error class is
 * the documented one.
 */

/** A folder next to the repository (outside it) with content worth protecting. */
function victim(repo: Repo): { dir: string; state(): Record<string, string> } {
  const dir = path.join(path.dirname(repo.root), 'victim');
  writeFiles(dir, { 'precious.txt': 'precious\n', 'sub/keep.txt': 'keep\n' });
  fs.chmodSync(dir, 0o750);
  const state = () => ({ ...treeState(dir), '.': `dir ${(fs.lstatSync(dir).mode & 0o7777).toString(8)}` });
  return { dir, state };
}

function ok(r: ReturnType<typeof run>) {
  expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
  return r;
}

/** Rewrites snapshot `id`'s manifest in the index (what a user who can write `.jvs/index.sqlite` can do). */
function editIndexManifest(repo: Repo, id: string, edit: (entries: any[]) => void) {
  const idx = IndexDb.open(new Layout(repo.root))!;
  expect(idx).toBeTruthy();
  try {
    const list = idx.getList(snapshotOwner(id))!;
    expect(list).toBeTruthy();
    const entries = list.entries.map((e) => ({ ...e }));
    edit(entries);
    idx.putList(snapshotOwner(id), { entries, probeNs: list.probeNs });
  } finally {
    idx.close();
  }
}

describe('issue 14: restore never acts outside the repository', () => {
  it('item 2: an index manifest row with a climbing path is never followed; verify --all and doctor --strict report it (E_PATH_ESCAPE)', () => {
    const repo = newRepo();
    const v = victim(repo);
    writeFiles(repo.main, { 'a.txt': 'snapshot content\n', 'b.txt': 'B\n' });
    const s1 = snapshot(repo, 'one');
    const want = treeState(repo.main);
    editIndexManifest(repo, s1, (entries) => {
      const a = entries.find((e) => e.rel === 'a.txt');
      a.rel = '../../victim/precious.txt';
    });
    fs.symlinkSync('/etc/shadow', path.join(v.dir, 'link-to-shadow'));
    const before = v.state();

    expectError(run(['verify', '--all', '--json'], repo.main), 'E_PATH_ESCAPE');
    const doc = run(['doctor', '--strict', '--json'], repo.main);
    expect(doc.code).not.toBe(0);
    expect(doc.stdout).toMatch(/E_PATH_ESCAPE/);

    writeFiles(repo.main, { 'a.txt': 'changed since\n' });
    fs.rmSync(path.join(repo.main, 'b.txt'));
    // The index is a cache: the damaged manifest is dropped and rebuilt from the payload.
    ok(run(['restore', s1, '--json'], repo.main));
    expect(treeState(repo.main)).toEqual(want);
    expect(v.state()).toEqual(before);
    ok(run(['verify', '--all', '--json'], repo.main));
  });

  it('item 4: a worktree root that is a symlink is refused with E_PATH_ESCAPE by restore, snapshot, status and fork, touching nothing', () => {
    const repo = newRepo();
    const v = victim(repo);
    writeFiles(repo.main, { 'a.txt': 'A\n' });
    const s1 = snapshot(repo, 'one');
    ok(run(['worktree', 'fork', s1, 'w', '--json'], repo.main));
    const before = v.state();
    // `main` replaced by a link to a folder outside the repository.
    fs.renameSync(repo.main, path.join(repo.root, 'main.moved'));
    fs.symlinkSync(v.dir, repo.main);
    expectError(run(['-w', 'main', 'restore', s1, '--json'], repo.root), 'E_PATH_ESCAPE');
    expectError(run(['-w', 'main', 'snapshot', 'x', '--json'], repo.root), 'E_PATH_ESCAPE');
    expectError(run(['-w', 'main', 'status', '--json'], repo.root), 'E_PATH_ESCAPE');
    expectError(run(['doctor', '--json'], repo.root), 'E_PATH_ESCAPE');
    expectError(run(['doctor', '--repair-runtime', '--json'], repo.root), 'E_PATH_ESCAPE');
    // Another worktree's folder as a link, and `worktrees/` itself as a link.
    const w = path.join(repo.root, 'worktrees', 'w');
    fs.rmSync(w, { recursive: true });
    fs.symlinkSync(v.dir, w);
    expectError(run(['-w', 'w', 'restore', s1, '--json'], repo.root), 'E_PATH_ESCAPE');
    fs.rmSync(path.join(repo.root, 'worktrees'), { recursive: true });
    fs.symlinkSync(path.dirname(repo.root), path.join(repo.root, 'worktrees'));
    expectError(run(['-w', 'w', 'restore', s1, '--json'], repo.root), 'E_PATH_ESCAPE');
    expectError(run(['worktree', 'fork', s1, 'fresh', '--json'], repo.root), 'E_PATH_ESCAPE');
    expect(fs.existsSync(path.join(path.dirname(repo.root), 'fresh'))).toBe(false);
    expect(v.state()).toEqual(before);
    expect(fs.readdirSync(path.join(repo.ctl, 'intents'))).toEqual([]);
  });

  for (const [how, env] of [['the addon', {}], ['the JavaScript fallback', { JVS_DISABLE_NATIVE: '1', JVS_NO_CLASSIFY: '1' }]] as const) {
    it(`item 3: a published folder or file swapped for a symlink to outside is refused (E_PATH_ESCAPE), neither read nor chmod-ed, worktree untouched (${how})`, () => {
      const repo = newRepo();
      const v = victim(repo);
      fs.chmodSync(path.join(v.dir, 'sub'), 0o700);
      writeFiles(repo.main, { 'd/x.txt': 'x in snapshot\n', 'd/y.txt': 'y\n', 'a.txt': 'A\n' });
      const s1 = snapshot(repo, 'one');
      writeFiles(repo.main, { 'd/x.txt': 'x changed\n', 'a.txt': 'A changed\n' });
      const worktreeBefore = treeState(repo.main);
      const before = v.state();
      const snap = path.join(repo.ctl, 'snapshots', s1);
      // The folder d swapped for a link to the victim's folder (made to look alike).
      fs.renameSync(path.join(snap, 'd'), path.join(repo.ctl, 'tmp', 'd.saved'));
      fs.symlinkSync(path.join(v.dir, 'sub'), path.join(snap, 'd'));
      expectError(run(['restore', s1, '--json'], repo.main, env), 'E_PATH_ESCAPE');
      expect(v.state()).toEqual(before);
      expect(treeState(repo.main)).toEqual(worktreeBefore);
      expect(fs.readdirSync(path.join(repo.ctl, 'intents'))).toEqual([]);
      // fork reads the snapshot the same way.
      expectError(run(['worktree', 'fork', s1, 'f', '--json'], repo.main, env), 'E_PATH_ESCAPE');
      expect(fs.existsSync(path.join(repo.root, 'worktrees', 'f'))).toBe(false);
      // A single file swapped for a link to a file outside.
      fs.rmSync(path.join(snap, 'd'));
      fs.renameSync(path.join(repo.ctl, 'tmp', 'd.saved'), path.join(snap, 'd'));
      fs.rmSync(path.join(snap, 'a.txt'));
      fs.symlinkSync(path.join(v.dir, 'precious.txt'), path.join(snap, 'a.txt'));
      expectError(run(['restore', s1, '--json'], repo.main, env), 'E_PATH_ESCAPE');
      expect(v.state()).toEqual(before);
      expect(treeState(repo.main)).toEqual(worktreeBefore);
      expect(fs.readFileSync(path.join(repo.main, 'a.txt'), 'utf8')).toBe('A changed\n');
    });
  }

  for (const [how, env] of [['the addon', {}], ['the JavaScript fallback', { JVS_DISABLE_NATIVE: '1', JVS_NO_CLASSIFY: '1' }]] as const) {
    it(`item 5: a flipped payload byte or a \`>>\` into a shared payload file stops restore before the worktree changes (E_PAYLOAD_HASH_MISMATCH); plain doctor reports it (${how})`, () => {
      const repo = newRepo();
      const v = victim(repo);
      const before = v.state();
      writeFiles(repo.main, { 'a.txt': 'alpha content\n', 'shared.txt': 'shared by both snapshots\n', 'b.txt': 'B1\n' });
      const s1 = snapshot(repo, 'one');
      writeFiles(repo.main, { 'b.txt': 'B2\n' });
      const s2 = snapshot(repo, 'two');
      const p1 = path.join(repo.ctl, 'snapshots', s1);
      const p2 = path.join(repo.ctl, 'snapshots', s2);
      // Unchanged files are hard links between snapshots: one inode for both.
      expect(fs.statSync(path.join(p1, 'shared.txt')).ino).toBe(fs.statSync(path.join(p2, 'shared.txt')).ino);
      ok(run(['doctor', '--json'], repo.main));

      // A flipped byte, same size (the mtime moves, as any write moves it).
      const a = path.join(p1, 'a.txt');
      fs.chmodSync(a, 0o644);
      const buf = fs.readFileSync(a);
      buf[0] ^= 1;
      fs.writeFileSync(a, buf);
      writeFiles(repo.main, { 'a.txt': 'worktree edit\n' });
      const worktreeBefore = treeState(repo.main);
      expectError(run(['restore', s1, '--json'], repo.main, env), 'E_PAYLOAD_HASH_MISMATCH');
      expect(treeState(repo.main)).toEqual(worktreeBefore);
      expect(fs.readdirSync(path.join(repo.ctl, 'intents'))).toEqual([]);
      expectError(run(['worktree', 'fork', s1, 'f', '--json'], repo.main, env), 'E_PAYLOAD_HASH_MISMATCH');
      expect(fs.existsSync(path.join(repo.root, 'worktrees', 'f'))).toBe(false);
      const doc = run(['doctor', '--json'], repo.main);
      expect(doc.code).not.toBe(0);
      expect(doc.stdout).toMatch(/E_PAYLOAD_HASH_MISMATCH/);
      expect(doc.stdout).toContain('a.txt');

      // One `>>` into the shared file damages both snapshots: both restores refuse.
      fs.chmodSync(path.join(p2, 'shared.txt'), 0o644);
      fs.appendFileSync(path.join(p2, 'shared.txt'), 'appended\n');
      fs.rmSync(path.join(repo.main, 'shared.txt'));
      const worktreeBefore2 = treeState(repo.main);
      expectError(run(['restore', s2, '--json'], repo.main, env), 'E_PAYLOAD_HASH_MISMATCH');
      expectError(run(['restore', s1, '--json'], repo.main, env), 'E_PAYLOAD_HASH_MISMATCH');
      expect(treeState(repo.main)).toEqual(worktreeBefore2);
      const doc2 = run(['doctor', '--json'], repo.main);
      expect(doc2.stdout).toContain('shared.txt');
      expect(v.state()).toEqual(before);
    });
  }
});

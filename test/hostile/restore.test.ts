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
});

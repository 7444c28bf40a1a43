import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JVS_BIN } from '../helpers/cli.js';
import { writeFiles } from '../helpers/tmp.js';
import { newRepo, treeState, type Repo } from '../integrity/support.js';

/*
 * Issue 14: `.jvsignore` is read through a directory fd of its tree's root, never
 * through a symlink and never from a FIFO. A `.jvsignore` that is a symlink (to a file
 * outside the repository) or a FIFO is refused with E_UNSUPPORTED_FILE by snapshot,
 * status, diff and restore (refused, not skipped: restore without the rules would
 * overwrite the paths they protect). The outside file holds rules that, if they were
 * read, would change what the commands do, so a followed link shows.
 */

/** Runs jvs; a command that blocks on a FIFO is killed after 60 s and fails the test by its signal. */
function jvsRun(args: string[], cwd: string, env: Record<string, string>) {
  const r = spawnSync(process.execPath, [JVS_BIN, ...args, '--json'], { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, encoding: 'utf8', input: '', timeout: 60_000 });
  expect(r.signal, `jvs ${args.join(' ')} was killed: it blocked`).toBeNull();
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectRefused(r: ReturnType<typeof jvsRun>, cls = 'E_UNSUPPORTED_FILE') {
  expect(r.code, r.stdout + r.stderr).not.toBe(0);
  const doc = JSON.parse(r.stdout);
  expect(doc.error?.class, r.stdout).toBe(cls);
  expect(doc.error.message).toMatch(/\.jvsignore/);
  expect(doc.error.hint).toBeTruthy();
}

function ok(r: ReturnType<typeof jvsRun>) {
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

/** An outside file whose rules, if read, would ignore `secret.txt` (and so leave it out of a snapshot). */
function outsideRules(repo: Repo): string {
  const file = path.join(path.dirname(repo.root), 'outside-rules');
  fs.writeFileSync(file, 'secret.txt\n');
  return file;
}

const MODES: Array<[string, Record<string, string>]> = [
  ['with the addon', {}],
  ['without the addon (JVS_DISABLE_NATIVE=1)', { JVS_DISABLE_NATIVE: '1' }],
];

describe('issue 14: .jvsignore is read only as a regular file below its root', () => {
  for (const [name, env] of MODES) {
    it(`${name}: a regular .jvsignore is applied (control)`, () => {
      const repo = newRepo();
      writeFiles(repo.main, { 'a.txt': 'A\n', 'secret.txt': 'S\n', '.jvsignore': 'secret.txt\n' });
      const s = ok(jvsRun(['snapshot', 'one'], repo.main, env));
      expect(fs.existsSync(path.join(repo.ctl, 'snapshots', s.snapshot_id, 'secret.txt'))).toBe(false);
      expect(fs.existsSync(path.join(repo.ctl, 'snapshots', s.snapshot_id, 'a.txt'))).toBe(true);
    });

    it(`${name}: a worktree .jvsignore that is a symlink to an outside file is refused by snapshot, status, diff and restore`, () => {
      const repo = newRepo();
      writeFiles(repo.main, { 'a.txt': 'A\n', 'secret.txt': 'S\n' });
      const s1 = ok(jvsRun(['snapshot', 'one'], repo.main, env)).snapshot_id as string;
      fs.symlinkSync(outsideRules(repo), path.join(repo.main, '.jvsignore'));
      fs.writeFileSync(path.join(repo.main, 'secret.txt'), 'changed\n');
      const before = treeState(repo.main);
      expectRefused(jvsRun(['snapshot', 'two'], repo.main, env));
      expectRefused(jvsRun(['status'], repo.main, env));
      expectRefused(jvsRun(['diff'], repo.main, env));
      expectRefused(jvsRun(['restore', s1], repo.main, env));
      expect(treeState(repo.main)).toEqual(before);
      expect(fs.readdirSync(path.join(repo.ctl, 'snapshots'))).toEqual([s1]);
    });

    it(`${name}: \`jvs init --template\` never copies the target of a symlinked .jvsignore into the worktree`, () => {
      const repo = newRepo();
      const outside = outsideRules(repo);
      fs.writeFileSync(outside, 'root:$6$secret-hash:19000:0:99999:7:::\n');
      fs.symlinkSync(outside, path.join(repo.main, '.jvsignore'));
      expectRefused(jvsRun(['init', '--template', 'node'], repo.main, env));
      expect(fs.readlinkSync(path.join(repo.main, '.jvsignore'))).toBe(outside);
      expect(fs.readFileSync(outside, 'utf8')).toBe('root:$6$secret-hash:19000:0:99999:7:::\n');
    });

    it(`${name}: a worktree .jvsignore that is a FIFO is refused without blocking`, () => {
      const repo = newRepo();
      writeFiles(repo.main, { 'a.txt': 'A\n' });
      const s1 = ok(jvsRun(['snapshot', 'one'], repo.main, env)).snapshot_id as string;
      expect(spawnSync('mkfifo', [path.join(repo.main, '.jvsignore')]).status).toBe(0);
      fs.writeFileSync(path.join(repo.main, 'a.txt'), 'changed\n');
      expectRefused(jvsRun(['snapshot', 'two'], repo.main, env));
      expectRefused(jvsRun(['status'], repo.main, env));
      expectRefused(jvsRun(['restore', s1], repo.main, env));
      expect(fs.readFileSync(path.join(repo.main, 'a.txt'), 'utf8')).toBe('changed\n');
    });

    it(`${name}: a snapshot's recorded .jvsignore swapped for a symlink (someone who writes .jvs/) is refused by restore and status, the worktree untouched`, () => {
      const repo = newRepo();
      writeFiles(repo.main, { 'a.txt': 'A\n', 'secret.txt': 'S\n', '.jvsignore': '# nothing\n' });
      const s1 = ok(jvsRun(['snapshot', 'one'], repo.main, env)).snapshot_id as string;
      const recorded = path.join(repo.ctl, 'snapshots', s1, '.jvsignore');
      fs.rmSync(recorded);
      fs.symlinkSync(outsideRules(repo), recorded);
      fs.writeFileSync(path.join(repo.main, 'secret.txt'), 'changed\n');
      const before = treeState(repo.main);
      expectRefused(jvsRun(['restore', s1], repo.main, env));
      expectRefused(jvsRun(['status'], repo.main, env));
      expect(treeState(repo.main)).toEqual(before);
    });
  }
});

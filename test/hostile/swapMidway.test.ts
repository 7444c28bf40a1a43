import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFiles } from '../helpers/tmp.js';
import { JVS_BIN, expectError, newRepo, run, snapshot, treeState, type Run } from '../integrity/support.js';

/*
 * Issue 14, "one rule for every path": a user who can write the worktree swaps one of
 * its folders for a symlink to a folder outside the repository *while* a restore runs,
 * after the restore has looked at the worktree and staged its copies, before it
 * removes, renames and chmods anything. Every change the restore then makes goes
 * through a directory fd of the worktree root (native/jvs_beneath.c), so each one that
 * would pass through the link fails instead (E_PATH_ESCAPE): the outside folder is
 * byte for byte, mode for mode, as it was, and `doctor --repair-runtime` finishes the
 * restore inside the worktree.
 */

/** `jvs args` stopped at a fault point (JVS_FAULT=<step>:stop); resolves once the process is stopped. */
function startStopped(args: string[], cwd: string, step: string): Promise<{ pid: number; done: Promise<Run> }> {
  const p = spawn(process.execPath, [JVS_BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', JVS_FAULT: `${step}:stop` } });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<Run>((resolve, reject) => {
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, json: () => JSON.parse(stdout) }));
  });
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 60_000;
    const poll = () => {
      let state = '';
      try {
        state = fs.readFileSync(`/proc/${p.pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0]!;
      } catch {
        /* not started yet, or gone */
      }
      if (state === 'T') return resolve({ pid: p.pid!, done });
      if (p.exitCode !== null || p.signalCode !== null || Date.now() > deadline) return reject(new Error(`jvs ${args.join(' ')} never reached ${step}: ${stdout}${stderr}`));
      setTimeout(poll, 20);
    };
    poll();
  });
}

describe('issue 14: a folder swapped for a symlink during a restore', () => {
  it('removals, renames, new folders and chmods never pass through it (E_PATH_ESCAPE); doctor finishes the restore inside the worktree', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'd/a.txt': 'snapshot a\n', 'd/keep.txt': 'keep\n', 'd/sub/s.txt': 'snapshot s\n', 'top.txt': 'top\n' });
    fs.chmodSync(path.join(repo.main, 'd'), 0o755);
    const s1 = snapshot(repo, 'one');
    const want = treeState(repo.main);
    // What the restore will undo: a changed file, an added file and folder, a removed folder, a mode.
    writeFiles(repo.main, { 'd/a.txt': 'scribbled\n', 'd/extra.txt': 'extra\n', 'd/newdir/n.txt': 'n\n', 'top.txt': 'changed\n' });
    fs.rmSync(path.join(repo.main, 'd/sub'), { recursive: true });
    fs.chmodSync(path.join(repo.main, 'd'), 0o700);

    // Outside the repository: the same names, worth protecting.
    const victim = path.join(path.dirname(repo.root), 'victim');
    writeFiles(victim, { 'a.txt': 'precious a\n', 'extra.txt': 'precious extra\n', 'newdir/n.txt': 'precious n\n', 'keep.txt': 'precious keep\n' });
    fs.chmodSync(victim, 0o750);
    const outside = () => ({ ...treeState(victim), '.': `dir ${(fs.lstatSync(victim).mode & 0o7777).toString(8)} ${fs.lstatSync(victim).mtimeMs}` });
    const before = outside();

    const { pid, done } = await startStopped(['restore', s1, '--discard-changes', '--json'], repo.main, 'apply.staged');
    // The swap, made while the restore is stopped between staging and its first change.
    fs.renameSync(path.join(repo.main, 'd'), path.join(repo.root, 'd-moved-away'));
    fs.symlinkSync(victim, path.join(repo.main, 'd'));
    process.kill(pid, 'SIGCONT');
    const r = await done;

    expectError(r, 'E_PATH_ESCAPE');
    expect(JSON.parse(r.stdout).error.hint).toContain('jvs doctor --repair-runtime');
    expect(outside()).toEqual(before);
    expect(fs.lstatSync(path.join(repo.main, 'd')).isSymbolicLink()).toBe(true); // followed by nothing, removed by nobody yet

    // Doctor finishes the restore: the link is replaced by the snapshot's folder, never followed.
    const d = run(['doctor', '--repair-runtime', '--json'], repo.main);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect(treeState(repo.main)).toEqual(want);
    expect(outside()).toEqual(before);
    expect(fs.readdirSync(path.join(repo.ctl, 'tmp')).filter((n) => n.startsWith('.apply-'))).toEqual([]);
  });

  it('a restore that meets no swap leaves no stage behind in .jvs/tmp or the worktree', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'd/a.txt': 'a\n', 'b.txt': 'b\n' });
    const s1 = snapshot(repo, 'one');
    writeFiles(repo.main, { 'd/a.txt': 'changed\n', 'c.txt': 'c\n' });
    const r = run(['restore', s1, '--discard-changes', '--json'], repo.main);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json().files_written).toBe(1);
    expect(fs.readdirSync(path.join(repo.ctl, 'tmp')).filter((n) => n.startsWith('.apply-'))).toEqual([]);
    expect(fs.readdirSync(repo.main).sort()).toEqual(['b.txt', 'd']);
  });
});

/** Files below `root` (symlinks not followed) whose bytes contain `text`. */
function filesHolding(root: string, text: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.readFileSync(p).includes(text)) out.push(path.relative(root, p));
    }
  };
  walk(root);
  return out;
}

describe('issue 14: a folder swapped for a symlink during a snapshot', () => {
  it('the snapshot never copies through it: E_PATH_ESCAPE, and no outside byte lands in the repository', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'd/f.txt': 'inside\n', 'top.txt': 'top\n' });
    const victim = path.join(path.dirname(repo.root), 'victim');
    writeFiles(victim, { 'f.txt': 'OUTSIDE SECRET\n' });
    const { pid, done } = await startStopped(['snapshot', 'first', '--json'], repo.main, 'materialize.walked');
    // The worktree was walked (d/f.txt is a file); now d becomes a link to the outside folder.
    fs.renameSync(path.join(repo.main, 'd'), path.join(repo.root, 'd-moved-away'));
    fs.symlinkSync(victim, path.join(repo.main, 'd'));
    process.kill(pid, 'SIGCONT');
    const r = await done;
    expectError(r, 'E_PATH_ESCAPE');
    expect(filesHolding(repo.root, 'OUTSIDE SECRET')).toEqual([]);
    expect(fs.readdirSync(path.join(repo.ctl, 'descriptors'))).toEqual([]);
    const d = run(['doctor', '--repair-runtime', '--json'], repo.main);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect(filesHolding(repo.root, 'OUTSIDE SECRET')).toEqual([]);
  });
});

describe('issue 14: verify reads payload files only below the snapshot root', () => {
  it('hashFiles with a root refuses a path through a symlinked folder (ELOOP) and hashes real ones', async () => {
    const { hashFiles } = await import('../../src/fsutil/fileHash.js');
    const { native } = await import('../../src/native/native.js');
    expect(native(), 'the addon must be built (CI requires it)').toBeTruthy();
    const repo = newRepo();
    const snap = path.join(repo.root, 'payload');
    writeFiles(snap, { 'd/f.txt': 'inside\n' });
    const victim = path.join(path.dirname(repo.root), 'victim');
    writeFiles(victim, { 'f.txt': 'OUTSIDE\n' });
    fs.symlinkSync(victim, path.join(snap, 'l'));
    const [inside] = hashFiles(['d/f.txt'], undefined, snap);
    expect(inside).toMatch(/^[0-9a-f]{64}$/);
    expect(() => hashFiles(['l/f.txt'], undefined, snap)).toThrow(expect.objectContaining({ code: 'ELOOP' }));
  });
});

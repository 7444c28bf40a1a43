import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { jvsOk } from '../helpers/cli.js';
import { loopFsMissing, mountLoopFs, type LoopFs } from '../helpers/loopfs.js';
import { itWith } from '../helpers/prereq.js';
import { writeFiles } from '../helpers/tmp.js';
import { descriptorIds, newRepo, run, runAsync, snapshot, treeState, type Repo, type Run } from '../integrity/support.js';

/**
 * Issue 14, item 6: near a full disk `jvs snapshot` and `jvs status` died with SIGBUS
 * (exit 135) on SQLite's memory-mapped `-shm` file, and the lock-owner write failed as
 * E_INTERNAL. The index now uses a rollback journal (nothing mapped), and every ENOSPC
 * is E_NO_SPACE with a hint saying what to free. Tested on a real, small, loop-mounted
 * ext4 (1 KiB blocks: smaller than a memory page, the case that raised SIGBUS).
 */

const mounts: LoopFs[] = [];
afterEach(() => {
  for (const m of mounts.splice(0)) m.unmount();
});

/** Bytes 18 and 19 of a SQLite header: 1 = rollback journal, 2 = WAL. */
function journalFormat(db: string): number[] {
  const b = fs.readFileSync(db).subarray(18, 20);
  return [b[0]!, b[1]!];
}

/** Fill the filesystem holding `file` to the last block, then give `freeKiB` back. */
function fill(file: string, freeKiB: number): void {
  fs.rmSync(file, { force: true });
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (let size = chunk.length; size >= 1024; size /= 2) {
      for (;;) {
        try {
          fs.writeSync(fd, chunk, 0, size);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
    fs.fsyncSync(fd);
    if (freeKiB) fs.ftruncateSync(fd, Math.max(0, fs.fstatSync(fd).size - freeKiB * 1024));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Ran to the end, or failed as E_NO_SPACE: never a signal (SIGBUS = 135), never E_INTERNAL. */
function okOrNoSpace(r: Run, what: string): 'ok' | 'E_NO_SPACE' {
  const info = `${what}: code ${r.code} signal ${r.signal}\n${r.stdout}\n${r.stderr}`;
  expect(r.signal, info).toBeNull();
  expect(r.code, info).not.toBe(135);
  if (r.code === 0) return 'ok';
  const doc = r.json();
  expect(doc.error?.class, info).toBe('E_NO_SPACE');
  expect(doc.error.hint, info).toMatch(/free space.*jvs gc plan/);
  return 'E_NO_SPACE';
}

describe('a full disk is an ordinary error (E_NO_SPACE), never SIGBUS', () => {
  itWith('loop-mounted ext4', loopFsMissing('ext4'), 'snapshot and status with 0-16 KiB free: ok or E_NO_SPACE, nothing lost, no -shm ever', () => {
    const fsys = mountLoopFs('ext4', 16);
    mounts.push(fsys);
    jvsOk(['init', 'repo'], { cwd: fsys.mountpoint });
    const repo: Repo = { root: path.join(fsys.mountpoint, 'repo'), main: path.join(fsys.mountpoint, 'repo/main'), ctl: path.join(fsys.mountpoint, 'repo/.jvs') };
    const db = path.join(repo.ctl, 'index.sqlite');
    writeFiles(repo.main, { 'a.txt': 'A', 'd/b.txt': 'B' });
    const before: string[] = [snapshot(repo, 'one')];
    writeFiles(repo.main, { 'a.txt': 'A2' });
    before.push(snapshot(repo, 'two'));
    expect(journalFormat(db)).toEqual([1, 1]);
    const filler = path.join(fsys.mountpoint, 'filler');
    const outcomes: string[] = [];
    let n = 0;
    for (const freeKiB of [0, 1, 2, 4, 8, 12, 16]) {
      // A change to snapshot, written before the disk is filled.
      fs.rmSync(filler, { force: true });
      writeFiles(repo.main, { [`c${n++}.txt`]: crypto.randomBytes(3000).toString('hex') });
      fill(filler, freeKiB);
      const state = treeState(repo.main);
      const st = run(['status', '--json'], repo.main);
      outcomes.push(`status@${freeKiB}:${okOrNoSpace(st, `status with ${freeKiB} KiB free`)}`);
      const sn = run(['snapshot', `at ${freeKiB} KiB free`, '--json'], repo.main);
      const res = okOrNoSpace(sn, `snapshot with ${freeKiB} KiB free`);
      outcomes.push(`snapshot@${freeKiB}:${res}`);
      if (res === 'ok') before.push(sn.json().snapshot_id);
      expect(fs.existsSync(`${db}-shm`), 'the index mapped a -shm file').toBe(false);
      expect(fs.existsSync(`${db}-wal`)).toBe(false);
      // Nothing lost: every published snapshot is still there, the worktree untouched.
      for (const id of before) expect(descriptorIds(repo)).toContain(id);
      expect(treeState(repo.main)).toEqual(state);
    }
    // The disk really was full: at least the fullest attempt failed.
    expect(outcomes).toContain('snapshot@0:E_NO_SPACE');
    fs.rmSync(filler);
    const d = run(['doctor', '--strict', '--repair-runtime', '--json'], repo.main);
    expect(d.code, d.stdout).toBe(0);
    const v = run(['verify', '--all', '--json'], repo.main);
    expect(v.code, v.stdout).toBe(0);
    expect(descriptorIds(repo)).toEqual([...before].sort());
    // With space back, a snapshot works again.
    expect(run(['snapshot', 'after', '--json'], repo.main).code).toBe(0);
  }, 240_000);

  it('an ENOSPC that reaches the edge unclassified is E_NO_SPACE with a hint, not E_INTERNAL', async () => {
    const { printError } = await import('../../src/cli/output.js');
    const e = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', path: '/x/.jvs/locks/repo.owner.json' });
    let out = '';
    const write = process.stdout.write;
    process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
    try {
      expect(printError(e, { json: true, color: false, progress: false, debug: false, quiet: false, waitMs: 0 })).toBe(9);
    } finally {
      process.stdout.write = write;
    }
    const doc = JSON.parse(out);
    expect(doc.error.class).toBe('E_NO_SPACE');
    expect(doc.error.hint).toMatch(/free space/);
  });
});

describe('index open mode', () => {
  it('an index left in WAL mode by an earlier version is switched to a rollback journal without mapping a -shm file', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    snapshot(repo, 'one');
    const db = path.join(repo.ctl, 'index.sqlite');
    const Database = createRequire(import.meta.url)('better-sqlite3');
    const h = new Database(db);
    h.pragma('journal_mode = WAL');
    h.close();
    expect(journalFormat(db)).toEqual([2, 2]);
    writeFiles(repo.main, { 'a.txt': 'B' });
    expect(run(['status', '--json'], repo.main).code).toBe(0);
    expect(journalFormat(db)).toEqual([1, 1]);
    expect(fs.existsSync(`${db}-shm`)).toBe(false);
    snapshot(repo, 'two');
    expect(run(['verify', '--all'], repo.main).code).toBe(0);
  });

  it('status runs alongside a snapshot of 3000 files sharing the index: every status succeeds', async () => {
    const repo = newRepo();
    const files: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) files[`d${i % 20}/f${i}`] = `v1-${i}`.repeat(50);
    writeFiles(repo.main, files);
    snapshot(repo, 'base');
    for (let i = 0; i < 3000; i += 3) files[`d${i % 20}/f${i}`] = `v2-${i}`.repeat(50);
    writeFiles(repo.main, files);
    const snap = runAsync(['snapshot', 'big', '--json'], repo.main);
    let done = false;
    void snap.then(() => (done = true));
    const statuses: Run[] = [];
    while (!done || statuses.length < 2) statuses.push(await runAsync(['status', '--json'], repo.main));
    const s = await snap;
    expect(s.code, s.stderr).toBe(0);
    for (const st of statuses) {
      expect(st.code, st.stdout + st.stderr).toBe(0);
      expect(st.json().worktree).toBe('main');
    }
  }, 120_000);
});

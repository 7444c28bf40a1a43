import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JVS_BIN, jvsOk } from '../helpers/cli.js';
import { writeFiles } from '../helpers/tmp.js';
import { ROOT, descriptorIds, expectError, newRepo, run, runAsync, snapshot, worktreeConfig, type Repo } from './support.js';

/**
 * Hold the repository lock, or a worktree's lock, from another process (the real lock
 * module, built) for `seconds`; the repository lock also until release() is called.
 */
function holdLock(root: string, seconds: number, which = 'repo'): Promise<{ pid: number; kill(): void; release(): void; done: Promise<void> }> {
  const script = `
    const { Layout } = await import(${JSON.stringify(path.join(ROOT, 'dist/repo/layout.js'))});
    const { acquireRepoLock, withWorktreeLock } = await import(${JSON.stringify(path.join(ROOT, 'dist/repo/lock.js'))});
    const { default: fs } = await import('node:fs');
    const layout = new Layout(${JSON.stringify(root)});
    const which = ${JSON.stringify(which)};
    if (which === 'repo') {
      const lock = acquireRepoLock(layout, { command: 'test-holder' });
      process.stdout.write('held\\n');
      const letGo = () => { lock.release(); process.exit(0); };
      setTimeout(letGo, ${seconds * 1000});
      // release(): any input, or the test's end of the pipe closing.
      process.stdin.on('data', letGo).on('end', letGo);
    } else {
      // Held for as long as the callback runs: it says so, then sleeps.
      withWorktreeLock(layout, [which.slice('worktree-'.length)], { command: 'test-holder' }, () => {
        fs.writeSync(1, 'held\\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${seconds * 1000});
      });
      process.exit(0);
    }
  `;
  const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  p.stdin.on('error', () => {}); // the holder may be gone when release() writes
  const done = new Promise<void>((r) => p.on('close', () => r()));
  return new Promise((resolve, reject) => {
    p.stdout.on('data', (d) => {
      if (String(d).includes('held')) resolve({ pid: p.pid!, kill: () => p.kill('SIGKILL'), release: () => p.stdin.end('release\n'), done });
    });
    p.on('error', reject);
    p.on('close', (code) => reject(new Error(`lock holder exited ${code} before holding the lock`)));
  });
}

/** Every descriptor's parent exists and main's lineage is one unbroken chain. */
function expectValidChain(repo: Repo) {
  const v = run(['verify', '--all', '--json'], repo.main);
  expect(v.code, v.stdout).toBe(0);
  const ids = new Set(descriptorIds(repo));
  const hist = jvsOk(['history', '--json'], { cwd: repo.main }).json().snapshots;
  for (let i = 0; i < hist.length - 1; i++) expect(hist[i].parent_id).toBe(hist[i + 1].snapshot_id);
  expect(hist[hist.length - 1].parent_id).toBeUndefined();
  for (const h of hist) expect(ids.has(h.snapshot_id)).toBe(true);
  expect(run(['doctor', '--strict'], repo.main).stdout).toContain('Repository is healthy.');
}

function garbageWorktree(repo: Repo, base: string) {
  jvsOk(['worktree', 'fork', base, 'scratch'], { cwd: repo.main });
  const dir = path.join(repo.root, 'worktrees/scratch');
  writeFiles(dir, { 's.txt': 's' });
  jvsOk(['snapshot', 'scratch'], { cwd: dir });
  jvsOk(['worktree', 'remove', 'scratch', '--force'], { cwd: repo.main });
}

describe('repository lock', () => {
  it('--no-wait: a second writer gets E_LOCKED at once, naming holder pid@host, start time and age', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const h = await holdLock(repo.root, 30);
    try {
      const r = run(['--no-wait', 'snapshot', 'blocked', '--json'], repo.main);
      expectError(r, 'E_LOCKED');
      expect(r.code).toBe(5);
      expect(r.json().error.message).toMatch(new RegExp(`^repository is locked by ${h.pid}@\\S+ since \\d{4}-\\d\\d-\\d\\dT[^ ]+ \\(\\d+ s ago, running \`jvs test-holder\`\\)`));
      expect(r.json().error.hint).toContain('--no-wait');
      expectError(run(['doctor', '--no-wait', '--json'], repo.main), 'E_LOCKED');
      expectError(run(['gc', 'plan', '--no-wait', '--json'], repo.main), 'E_LOCKED');
      expect(descriptorIds(repo)).toEqual([]);
      expect(fs.readdirSync(path.join(repo.ctl, 'snapshots'))).toEqual([]);
    } finally {
      h.kill();
      await h.done;
    }
  });

  it('the lock is released the moment its holder is killed, and its stale owner record is never named', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const h = await holdLock(repo.root, 600);
    h.kill();
    await h.done;
    // kill -9 left the owner record behind; flock went with the process.
    const record = path.join(repo.ctl, 'locks/repo.owner.json');
    expect(JSON.parse(fs.readFileSync(record, 'utf8')).pid).toBe(h.pid);
    const r = run(['--no-wait', 'snapshot', 'after kill', '--json'], repo.main);
    expect(r.code, r.stdout).toBe(0);

    // A live holder whose record still names the dead process: the message does not name it.
    const live = await holdLock(repo.root, 30);
    try {
      fs.writeFileSync(record, JSON.stringify({ pid: h.pid, host: os.hostname(), since: new Date().toISOString(), command: 'dead' }) + '\n');
      const blocked = run(['--no-wait', 'snapshot', 'blocked', '--json'], repo.main);
      expectError(blocked, 'E_LOCKED');
      expect(blocked.json().error.message).not.toContain(String(h.pid));
    } finally {
      live.kill();
      await live.done;
    }
  });

  it('waiting is the default: a writer queues behind the holder and succeeds; --wait <s> bounds the wait', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    // Held until released (60 s at most), not for a fixed time a slow start could outlast.
    const h = await holdLock(repo.root, 60);
    const short = run(['--wait', '0.5', 'snapshot', 'too impatient', '--json'], repo.main);
    expectError(short, 'E_LOCKED');
    expect(short.json().error.message).toContain('gave up after waiting');
    const patient = runAsync(['snapshot', 'patient', '--json'], repo.main);
    await new Promise((r) => setTimeout(r, 1000));
    h.release();
    const waited = await patient;
    expect(waited.code, waited.stdout + waited.stderr).toBe(0);
    expect(waited.json().note).toBe('patient');
    // Not a terminal: nothing about the wait on stderr.
    expect(waited.stderr).toBe('');
    await h.done;
  });

  it('on a terminal, a wait longer than a second is announced on stderr, naming the holder', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    // Held until the terminal shows the announcement (60 s at most): however slowly jvs
    // starts, it has waited more than a second by then.
    const h = await holdLock(repo.root, 60);
    // script(1) gives the command a pseudo-terminal.
    const p = spawn('script', ['-qec', `${JSON.stringify(process.execPath)} ${JSON.stringify(JVS_BIN)} snapshot on-a-tty`, '/dev/null'], { cwd: repo.main, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let screen = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      screen += d;
      if (screen.includes('waiting: repository is locked')) h.release();
    });
    p.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((r) => p.on('close', (c) => r(c)));
    expect(code, screen + stderr).toBe(0);
    expect(screen).toMatch(new RegExp(`waiting: repository is locked by ${h.pid}@`));
    expect(screen).toContain('Created snapshot');
    await h.done;
  });

  it('a worktree lock is per worktree: --no-wait on a busy worktree says which one, another worktree goes ahead', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const base = snapshot(repo, 'base');
    jvsOk(['worktree', 'fork', base, 'other'], { cwd: repo.main });
    const h = await holdLock(repo.root, 30, 'worktree-main');
    try {
      const busy = run(['--no-wait', 'snapshot', 'main is busy', '--json'], repo.main);
      expectError(busy, 'E_LOCKED');
      expect(busy.json().error.message).toMatch(new RegExp(`^worktree 'main' is locked by ${h.pid}@`));
      const other = path.join(repo.root, 'worktrees/other');
      writeFiles(other, { 'b.txt': 'B' });
      const ok = run(['--no-wait', 'snapshot', 'other goes ahead', '--json'], other);
      expect(ok.code, ok.stdout).toBe(0);
      // doctor needs every operation stopped: it names the worktree being worked on.
      const doc = run(['--no-wait', 'doctor', '--json'], repo.main);
      expectError(doc, 'E_LOCKED');
      expect(doc.json().error.message).toContain(`repository is in use by ${h.pid}@`);
    } finally {
      h.kill();
      await h.done;
    }
  });
});

describe('publish steps wait', () => {
  it('--no-wait bounds only the start: a restore whose publish finds the repository lock busy waits for it, leaving no open intent', async () => {
    const repo = newRepo();
    const files: Record<string, string> = {};
    for (let i = 0; i < 400; i++) files[`d${i % 20}/f${i}.txt`] = `v1 ${i} `.repeat(20_000);
    writeFiles(repo.main, files);
    const v1 = snapshot(repo, 'v1');
    for (const k of Object.keys(files)) files[k] = `v2 ${k} `.repeat(20_000);
    writeFiles(repo.main, files);
    snapshot(repo, 'v2');
    // Another process, ready before the restore starts, takes the repository lock as soon
    // as the restore has written its intent (and so released the lock for its long
    // part, ~60 MiB to write), and keeps it for 8 s, longer than that part takes.
    const script = `
      const { default: fs } = await import('node:fs');
      const { Layout } = await import(${JSON.stringify(path.join(ROOT, 'dist/repo/layout.js'))});
      const { acquireRepoLock } = await import(${JSON.stringify(path.join(ROOT, 'dist/repo/lock.js'))});
      const dir = ${JSON.stringify(path.join(repo.ctl, 'intents'))};
      process.stdout.write('ready\\n');
      while (!fs.readdirSync(dir).some((n) => n.startsWith('restore-'))) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      const lock = acquireRepoLock(new Layout(${JSON.stringify(repo.root)}), { waitMs: Infinity, command: 'test-holder' });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 8000);
      lock.release();
    `;
    const holder = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const held = new Promise<void>((r) => holder.on('close', () => r()));
    await new Promise<void>((r) => holder.stdout.on('data', (d) => String(d).includes('ready') && r()));
    const r = await runAsync(['--no-wait', 'restore', v1, '--json'], repo.main);
    await held;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(repo.main, 'd7/f7.txt'), 'utf8')).toBe('v1 7 '.repeat(20_000));
    expect(fs.readdirSync(path.join(repo.ctl, 'intents'))).toEqual([]);
    expect(worktreeConfig(repo).head_snapshot_id).toBe(v1);
    expect(run(['doctor', '--strict'], repo.main).stdout).toContain('Repository is healthy.');
  });
});

describe('gc against operations running at the same time', () => {
  it('gc run and a restore of a snapshot the plan would delete never both succeed: the restore\'s intent protects it', async () => {
    for (let round = 0; round < 3; round++) {
      const repo = newRepo();
      writeFiles(repo.main, { 'a.txt': 'old', 'big.bin': 'x'.repeat(4 << 20) });
      const old = snapshot(repo, 'old');
      writeFiles(repo.main, { 'a.txt': 'new', 'big.bin': 'y'.repeat(4 << 20) });
      snapshot(repo, 'new');
      const p = jvsOk(['gc', 'plan', '--keep', '1', '--json'], { cwd: repo.main }).json();
      expect(p.to_delete).toEqual([old]);
      const [r, g] = await Promise.all([runAsync(['restore', old, '--json'], repo.main), runAsync(['gc', 'run', '--plan-id', p.plan_id, '--json'], repo.main)]);
      if (r.code === 0) {
        expectError(g, 'E_GC_PLAN_MISMATCH');
        expect(descriptorIds(repo)).toContain(old);
        expect(fs.readFileSync(path.join(repo.main, 'a.txt'), 'utf8')).toBe('old');
      } else {
        expect(g.code, g.stdout + g.stderr).toBe(0);
        expectError(r, 'E_NOT_FOUND');
        expect(descriptorIds(repo)).not.toContain(old);
        expect(fs.readFileSync(path.join(repo.main, 'a.txt'), 'utf8')).toBe('new');
      }
      expect(run(['verify', '--all'], repo.main).code).toBe(0);
      expect(fs.readdirSync(path.join(repo.ctl, 'intents'))).toEqual([]);
    }
  });
});

describe('8 concurrent writers on one repository', () => {
  const OPS = (planId: string): string[][] => [
    ['snapshot', 'w1', '--json'],
    ['snapshot', 'w2', '--json'],
    ['snapshot', 'w3', '--json'],
    ['restore', 'HEAD', '--json'],
    ['restore', 'HEAD', '--json'],
    ['gc', 'plan', '--json'],
    ['gc', 'run', '--plan-id', planId, '--json'],
    ['snapshot', 'w4', '--json'],
  ];

  it('with --no-wait every operation completes or fails with E_LOCKED, and history stays a chain', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A', 'd/b': 'B' });
    const base = snapshot(repo, 'base');
    garbageWorktree(repo, base);
    let completed = 0;
    for (let round = 0; round < 3; round++) {
      writeFiles(repo.main, { 'a.txt': `round ${round}` });
      const planId = jvsOk(['gc', 'plan', '--json'], { cwd: repo.main }).json().plan_id;
      const results = await Promise.all(OPS(planId).map((args) => runAsync(['--no-wait', ...args], repo.main)));
      for (const r of results) {
        expect(r.signal).toBeNull();
        if (r.code === 0) completed++;
        else expect(r.json().error.class, r.stdout + r.stderr).toBe('E_LOCKED');
      }
      expectValidChain(repo);
    }
    expect(completed).toBeGreaterThanOrEqual(3);
  });

  it('without flags all 8 operations wait their turn, complete, and every snapshot lands in one chain', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const base = snapshot(repo, 'base');
    garbageWorktree(repo, base);
    const planId = jvsOk(['gc', 'plan', '--json'], { cwd: repo.main }).json().plan_id;
    const results = await Promise.all(OPS(planId).map((args) => runAsync(args, repo.main)));
    for (const r of results) expect(r.code, r.stdout + r.stderr).toBe(0);
    expectValidChain(repo);
    const hist = jvsOk(['history', '--json'], { cwd: repo.main }).json().snapshots;
    expect(hist.map((h: any) => h.note).sort()).toEqual(['base', 'w1', 'w2', 'w3', 'w4']);
    expect(worktreeConfig(repo).head_snapshot_id).toBe(hist[0].snapshot_id);
    expect(fs.readdirSync(path.join(repo.ctl, 'intents'))).toEqual([]);
  });
});

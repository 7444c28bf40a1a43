import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jvsOk } from '../helpers/cli.js';
import { writeFiles } from '../helpers/tmp.js';
import { ROOT, descriptorIds, expectError, newRepo, run, runAsync, snapshot, worktreeConfig, type Repo } from './support.js';

/** Hold the repository lock from another process (the real lock module, built). */
function holdLock(root: string, seconds: number): Promise<{ pid: number; kill(): void; done: Promise<void> }> {
  const script = `
    const { Layout } = await import(${JSON.stringify(path.join(ROOT, 'dist/repo/layout.js'))});
    const { acquireRepoLock } = await import(${JSON.stringify(path.join(ROOT, 'dist/repo/lock.js'))});
    const lock = acquireRepoLock(new Layout(${JSON.stringify(root)}), { command: 'test-holder' });
    process.stdout.write('held\\n');
    setTimeout(() => { lock.release(); process.exit(0); }, ${seconds * 1000});
  `;
  const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const done = new Promise<void>((r) => p.on('close', () => r()));
  return new Promise((resolve, reject) => {
    p.stdout.on('data', (d) => {
      if (String(d).includes('held')) resolve({ pid: p.pid!, kill: () => p.kill('SIGKILL'), done });
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
  it('a second writer gets E_LOCKED naming holder pid@host, start time and age', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const h = await holdLock(repo.root, 30);
    try {
      const r = run(['snapshot', 'blocked', '--json'], repo.main);
      expectError(r, 'E_LOCKED');
      expect(r.code).toBe(5);
      expect(r.json().error.message).toMatch(new RegExp(`locked by ${h.pid}@\\S+ since \\d{4}-\\d\\d-\\d\\dT[^ ]+ \\(\\d+ s ago, running \`jvs test-holder\`\\)`));
      expect(r.json().error.hint).toContain('--wait');
      expectError(run(['doctor', '--json'], repo.main), 'E_LOCKED');
      expectError(run(['gc', 'plan', '--json'], repo.main), 'E_LOCKED');
      expect(descriptorIds(repo)).toEqual([]);
    } finally {
      h.kill();
      await h.done;
    }
  });

  it('the lock is released the moment its holder is killed', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const h = await holdLock(repo.root, 600);
    h.kill();
    await h.done;
    const r = run(['snapshot', 'after kill', '--json'], repo.main);
    expect(r.code, r.stdout).toBe(0);
  });

  it('--wait queues behind the holder and then succeeds; a short --wait gives up with E_LOCKED', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const h = await holdLock(repo.root, 3);
    const short = run(['--wait', '0.5', 'snapshot', 'too impatient', '--json'], repo.main);
    expectError(short, 'E_LOCKED');
    expect(short.json().error.message).toContain('gave up after waiting');
    const waited = await runAsync(['snapshot', 'patient', '--wait', '60', '--json'], repo.main);
    expect(waited.code, waited.stdout + waited.stderr).toBe(0);
    expect(waited.json().note).toBe('patient');
    await h.done;
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

  it('without --wait every operation completes or fails with E_LOCKED, and history stays a chain', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A', 'd/b': 'B' });
    const base = snapshot(repo, 'base');
    garbageWorktree(repo, base);
    let completed = 0;
    for (let round = 0; round < 3; round++) {
      writeFiles(repo.main, { 'a.txt': `round ${round}` });
      const planId = jvsOk(['gc', 'plan', '--json'], { cwd: repo.main }).json().plan_id;
      const results = await Promise.all(OPS(planId).map((args) => runAsync(args, repo.main)));
      for (const r of results) {
        expect(r.signal).toBeNull();
        if (r.code === 0) completed++;
        else expect(r.json().error.class, r.stdout + r.stderr).toBe('E_LOCKED');
      }
      expectValidChain(repo);
    }
    expect(completed).toBeGreaterThanOrEqual(3);
  });

  it('with --wait all 8 operations complete and every snapshot lands in one chain', async () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const base = snapshot(repo, 'base');
    garbageWorktree(repo, base);
    const planId = jvsOk(['gc', 'plan', '--json'], { cwd: repo.main }).json().plan_id;
    const results = await Promise.all(OPS(planId).map((args) => runAsync(['--wait', '120', ...args], repo.main)));
    for (const r of results) expect(r.code, r.stdout + r.stderr).toBe(0);
    expectValidChain(repo);
    const hist = jvsOk(['history', '--json'], { cwd: repo.main }).json().snapshots;
    expect(hist.map((h: any) => h.note).sort()).toEqual(['base', 'w1', 'w2', 'w3', 'w4']);
    expect(worktreeConfig(repo).head_snapshot_id).toBe(hist[0].snapshot_id);
    expect(fs.readdirSync(path.join(repo.ctl, 'intents'))).toEqual([]);
  });
});

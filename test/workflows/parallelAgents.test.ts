import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { jvsOk } from '../helpers/cli.js';
import { writeFiles } from '../helpers/tmp.js';
import { newRepo, run, runAsync, type Repo } from '../integrity/support.js';

/**
 * The AI-agent workflow with the agents running at once: each in its own worktree of
 * one repository, each running plain `jvs` commands with no lock flags. DESIGN section
 * 5: worktrees are independent, so none of them may fail with E_LOCKED.
 */

const AGENTS = 8;

function forkAgents(repo: Repo): string[] {
  const dirs: string[] = [];
  for (let run = 1; run <= AGENTS; run++) {
    jvsOk(['worktree', 'fork', `run-${run}`], { cwd: repo.main });
    dirs.push(jvsOk(['worktree', 'path', `run-${run}`], { cwd: repo.main }).stdout.trim());
  }
  return dirs;
}

function baseline(repo: Repo): string {
  const files: Record<string, string> = {};
  for (let i = 0; i < 200; i++) files[`data/part-${i}.csv`] = `row ${i}\n`.repeat(20);
  writeFiles(repo.main, files);
  return jvsOk(['snapshot', 'baseline', '--tag', 'baseline', '--json'], { cwd: repo.main }).json().snapshot_id;
}

/** `history --json` of the worktree in `dir`: head first, each snapshot's parent the next one. */
function expectChain(dir: string, expected: string[]) {
  const hist = jvsOk(['history', '--json'], { cwd: dir }).json().snapshots as { snapshot_id: string; parent_id?: string }[];
  expect(hist.map((h) => h.snapshot_id)).toEqual(expected);
  for (let i = 0; i < hist.length - 1; i++) expect(hist[i].parent_id).toBe(hist[i + 1].snapshot_id);
  expect(hist[hist.length - 1].parent_id).toBeUndefined();
}

describe('parallel agents: 8 worktrees of one repository at once', () => {
  it('8 concurrent `jvs snapshot` processes with no flags all succeed; verify is clean and each worktree keeps a valid chain', async () => {
    const repo = newRepo();
    const base = baseline(repo);
    const dirs = forkAgents(repo);
    // Each agent writes its results (a few MiB, so the snapshots' long parts overlap).
    dirs.forEach((dir, i) => writeFiles(dir, { [`results/${i + 1}.json`]: JSON.stringify({ seed: i + 1 }), 'model.bin': randomBytes(2 << 20).toString('base64') }));

    const results = await Promise.all(dirs.map((dir, i) => runAsync(['snapshot', `Run ${i + 1}: ok`, '--tag', `run-${i + 1}`, '--tag', 'agent'], dir)));
    for (const r of results) {
      expect(r.signal).toBeNull();
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^Created snapshot /);
    }

    const v = run(['verify', '--all', '--json'], repo.main);
    expect(v.code, v.stdout).toBe(0);
    expect(v.json().results).toHaveLength(AGENTS + 1);
    expect(run(['doctor', '--strict'], repo.main).stdout).toContain('Repository is healthy.');
    for (const [i, dir] of dirs.entries()) {
      const cfg = JSON.parse(fs.readFileSync(path.join(repo.root, '.jvs/worktrees', `run-${i + 1}`, 'config.json'), 'utf8'));
      expect(cfg.head_snapshot_id).toBe(cfg.latest_snapshot_id);
      expectChain(dir, [cfg.head_snapshot_id, base]);
      const tagged = jvsOk(['history', '--tag', `run-${i + 1}`, '--json'], { cwd: dir }).json().snapshots;
      expect(tagged.map((s: any) => s.snapshot_id)).toEqual([cfg.head_snapshot_id]);
    }
    expect(fs.readdirSync(path.join(repo.root, '.jvs/intents'))).toEqual([]);
  });

  it('forks, restores and snapshots of different worktrees at the same time all succeed without flags', async () => {
    const repo = newRepo();
    const base = baseline(repo);
    const dirs = forkAgents(repo).slice(0, 6);
    // Agents 1-3 changed their worktree and go back to the baseline; 4-6 snapshot; two new forks.
    dirs.forEach((dir) => writeFiles(dir, { 'data/part-1.csv': 'changed\n', 'scratch.txt': randomBytes(1 << 20).toString('hex') }));
    const ops = [
      ...dirs.slice(0, 3).map((dir) => runAsync(['restore', 'baseline'], dir)),
      ...dirs.slice(3).map((dir, i) => runAsync(['snapshot', `Run ${i + 4}`], dir)),
      runAsync(['worktree', 'fork', 'run-9'], repo.main),
      runAsync(['worktree', 'fork', 'run-10'], repo.main),
    ];
    const results = await Promise.all(ops);
    for (const r of results) expect(r.code, r.stdout + r.stderr).toBe(0);

    for (const dir of dirs.slice(0, 3)) {
      expect(fs.readFileSync(path.join(dir, 'data/part-1.csv'), 'utf8')).toBe('row 1\n'.repeat(20));
      expect(fs.existsSync(path.join(dir, 'scratch.txt'))).toBe(false);
    }
    for (const name of ['run-9', 'run-10']) {
      const dir = jvsOk(['worktree', 'path', name], { cwd: repo.main }).stdout.trim();
      expect(fs.readFileSync(path.join(dir, 'data/part-7.csv'), 'utf8')).toBe('row 7\n'.repeat(20));
    }
    for (const dir of dirs.slice(3)) {
      const hist = jvsOk(['history', '--json'], { cwd: dir }).json().snapshots;
      expect(hist).toHaveLength(2);
      expect(hist[1].snapshot_id).toBe(base);
    }
    const v = run(['verify', '--all', '--json'], repo.main);
    expect(v.code, v.stdout).toBe(0);
    expect(run(['doctor', '--strict'], repo.main).stdout).toContain('Repository is healthy.');
  });
});

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { JVS_BIN, ROOT, jvsOk } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

/** Shared by the integrity suites: repositories in temp dirs and the built binary. */

export interface Repo {
  root: string;
  main: string;
  ctl: string;
}

export function newRepo(): Repo {
  const dir = tmpDir('jvs-int-');
  jvsOk(['init', 'repo'], { cwd: dir });
  const root = path.join(dir, 'repo');
  return { root, main: path.join(root, 'main'), ctl: path.join(root, '.jvs') };
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}

/** Run the built binary; unlike the shared helper this keeps the killing signal. */
export function run(args: string[], cwd: string, env: Record<string, string> = {}): Run {
  const r = spawnSync(process.execPath, [JVS_BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, encoding: 'utf8', input: '', timeout: 300_000 });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

/** Run asynchronously (for concurrent writers). */
export function runAsync(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [JVS_BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, json: () => JSON.parse(stdout) }));
  });
}

/** A failed command in --json mode: its error class, and proof no stack trace leaked. */
export function expectError(r: Run, cls: string): void {
  expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).not.toBe(0);
  expect(r.signal).toBeNull();
  const doc = JSON.parse(r.stdout);
  expect(doc.error?.class, r.stdout).toBe(cls);
  expect(doc.error.message).toBeTruthy();
  expect(r.stderr).not.toMatch(/\n\s+at .+\(.*:\d+:\d+\)/);
}

export function snapshot(repo: Repo, note: string, extra: string[] = []): string {
  return jvsOk(['snapshot', note, '--json', ...extra], { cwd: repo.main }).json().snapshot_id;
}

export function descriptorIds(repo: Repo): string[] {
  return fs.readdirSync(path.join(repo.ctl, 'descriptors')).filter((n) => /^\d{13}-[0-9a-f]{8}\.json$/.test(n)).map((n) => n.slice(0, -5)).sort();
}

export function worktreeConfig(repo: Repo, name = 'main'): any {
  return JSON.parse(fs.readFileSync(path.join(repo.ctl, 'worktrees', name, 'config.json'), 'utf8'));
}

/** rel → "type mode content" for a whole tree: compares content, symlinks and modes. */
export function treeState(root: string, skip: (rel: string) => boolean = () => false): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip(r)) continue;
      const abs = path.join(dir, name);
      const st = fs.lstatSync(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[r] = `link ${fs.readlinkSync(abs)}`;
      else if (st.isDirectory()) {
        out[`${r}/`] = `dir ${mode}`;
        walk(abs, r);
      } else out[r] = `file ${mode} ${fs.readFileSync(abs).toString('base64')}`;
    }
  };
  walk(root, '');
  return out;
}

/** Every `faultPoint('…')` step named in the sources: the crash suite must cover each. */
export function faultSteps(): string[] {
  const steps = new Set<string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) for (const m of fs.readFileSync(p, 'utf8').matchAll(/faultPoint\('([^']+)'\)/g)) steps.add(m[1]!);
    }
  };
  walk(path.join(ROOT, 'src'));
  return [...steps].sort();
}

export { JVS_BIN, ROOT };

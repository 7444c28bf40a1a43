import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { JVS_BIN, ROOT, jvs } from '../helpers/cli.js';
import { checkInvocation, commandTree, invocations } from '../helpers/commandCheck.js';
import { itWith } from '../helpers/prereq.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * Every ```bash block of the quick starts and recipes runs here, in order, as one bash
 * script per document (`set -euo pipefail`), in a fresh temp dir with the built `jvs`
 * first on PATH. Blocks whose first line is `# requires: jvs mount` run only when the
 * mount command exists; `# requires: docker` blocks cannot run on this machine, so
 * their jvs command lines (and the Compose file's) are checked against the real
 * command tree instead.
 */
const DOCS: Record<string, string[]> = {
  'docs/quickstart-games.md': [
    'Initialized JVS repository in',
    'from the unity template',
    'Created snapshot',
    'Restored to snapshot',
    'Worktree is now in DETACHED state.',
    'Kept unsaved changes',
    'Would remove: 1',
    'Started a new line from',
    'Worktree is now at HEAD state.',
    "Created worktree 'hero-rework' from snapshot",
    'E_HOOK_REJECTED',
    'from the unreal template',
    'Verified',
  ],
  'docs/quickstart-agents.md': ['Created snapshot', "Created worktree 'run-1' from snapshot", 'A snapshot here starts a new line from', 'Started a new line from', 'Kept unsaved changes', 'Bring them back with: jvs restore', 'Would write', 'Worktree is now at HEAD state.', "Removed worktree 'run-2'"],
  'docs/quickstart-etl.md': ['Created snapshot', 'E_HOOK_REJECTED', 'Worktree is now at HEAD state.', 'no snapshot for a failed stage', 'Started a new line from', '2026-12-01.csv'],
  'docs/recipes/airflow.md': ['stage extract ->', 'stage load ->', 'refused by the pre-snapshot hook'],
  'docs/recipes/unity-build.md': ['build OK', 'build FAILED', 'no snapshot'],
  'docs/recipes/docker-compose.md': [],
};

const MOUNT_PHRASES: Record<string, string[]> = {
  'docs/quickstart-games.md': ['Unmounted'],
  'docs/quickstart-agents.md': ['"ok": true', '"restore_command": "jvs restore', '"parent_id"', 'Unmounted'],
};

interface Block {
  line: number;
  text: string;
  requires?: string;
}

function bashBlocks(file: string): Block[] {
  const abs = path.join(ROOT, file);
  if (!fs.existsSync(abs)) return [];
  const src = fs.readFileSync(abs, 'utf8');
  const out: Block[] = [];
  for (const m of src.matchAll(/^```bash\n([\s\S]*?)^```$/gm)) {
    const text = m[1]!;
    const line = src.slice(0, m.index).split('\n').length;
    const req = /^# requires: (.+)$/m.exec(text.split('\n')[0] ?? '');
    out.push({ line, text, ...(req ? { requires: req[1]!.trim() } : {}) });
  }
  return out;
}

function shimDir(): string {
  const dir = tmpDir('jvs-shim-');
  fs.writeFileSync(path.join(dir, 'jvs'), `#!/bin/sh\nexec "${process.execPath}" "${JVS_BIN}" "$@"\n`, { mode: 0o755 });
  return dir;
}

const mountMissing = (() => {
  const r = jvs(['mount', '--help'], { cwd: ROOT });
  return r.code === 0 ? undefined : 'the `jvs mount` command is not built yet';
})();
const fuseMissing = fs.existsSync('/dev/fuse') ? undefined : '/dev/fuse is missing';

/** Unmount whatever a failed script left mounted below `dir`. */
function unmountBelow(dir: string): void {
  const mounts = fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p.startsWith(dir));
  for (const p of mounts) spawnSync('fusermount', ['-u', '-z', p]);
}

const workDirs: string[] = [];
afterEach(() => {
  for (const d of workDirs.splice(0)) unmountBelow(d);
});

function runDoc(file: string, include: (b: Block) => boolean): { stdout: string; stderr: string; code: number; blocks: number } {
  const blocks = bashBlocks(file).filter(include);
  const work = tmpDir('jvs-doc-');
  workDirs.push(work);
  const home = path.join(work, 'home');
  fs.mkdirSync(home);
  const script = ['set -euo pipefail', ...blocks.map((b) => `echo "::: ${file}:${b.line}" >&2\n${b.text}`)].join('\n');
  const scriptFile = path.join(work, 'doc.sh');
  fs.writeFileSync(scriptFile, script);
  const r = spawnSync('bash', [scriptFile], {
    cwd: work,
    env: { ...process.env, PATH: `${shimDir()}:${process.env.PATH}`, HOME: home, JVS_SOURCE: ROOT, NO_COLOR: '1' },
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { stdout: r.stdout, stderr: r.stderr, code: r.status ?? 128, blocks: blocks.length };
}

function expectRan(file: string, r: ReturnType<typeof runDoc>, phrases: string[]): void {
  if (r.code !== 0) {
    const where = [...r.stderr.matchAll(/^::: (.+)$/gm)].pop()?.[1];
    throw new Error(`${file}: the block at ${where} failed (exit ${r.code})\n--- stdout (tail)\n${r.stdout.slice(-3000)}\n--- stderr (tail)\n${r.stderr.slice(-3000)}`);
  }
  const both = `${r.stdout}\n${r.stderr}`;
  expect(phrases.filter((p) => !both.includes(p))).toEqual([]);
}

describe('docs: every command in the quick starts and recipes runs', () => {
  for (const [file, phrases] of Object.entries(DOCS)) {
    it(`${file} exists and has bash blocks`, () => {
      expect(fs.existsSync(path.join(ROOT, file)), `${file} exists`).toBe(true);
      expect(bashBlocks(file).length).toBeGreaterThan(0);
    });

    const hasMountBlocks = bashBlocks(file).some((b) => b.requires === 'jvs mount');
    // With the mount available the run below covers every block; without it, the rest still runs.
    if (bashBlocks(file).some((b) => !b.requires) && (!hasMountBlocks || mountMissing || fuseMissing)) {
      it(`${file}: its bash blocks run in order and exit 0`, () => {
        const r = runDoc(file, (b) => !b.requires);
        expectRan(file, r, phrases);
      });
    }

    if (hasMountBlocks) {
      const name = `${file}: with the mount, every block including the mount ones runs`;
      if (mountMissing) {
        // Not a missing machine prerequisite: the command itself is still being built.
        console.warn(`\n!!! SKIPPING "${name}": ${mountMissing}\n`);
        it.runIf(false)(`${name} [SKIPPED: ${mountMissing}]`, () => {});
      } else {
        itWith('FUSE', fuseMissing, name, () => {
          const r = runDoc(file, (b) => !b.requires || b.requires === 'jvs mount');
          expectRan(file, r, [...phrases, ...(MOUNT_PHRASES[file] ?? [])]);
        });
      }
    }
  }

  it('every block is plain or marked with a known requirement', () => {
    const unknown = Object.keys(DOCS).flatMap((f) => bashBlocks(f).filter((b) => b.requires && !['jvs mount', 'docker'].includes(b.requires)).map((b) => `${f}:${b.line}: ${b.requires}`));
    expect(unknown).toEqual([]);
  });

  it('docker blocks and the Compose file run only real jvs commands', () => {
    const root = commandTree();
    const lines: [string, string][] = [];
    for (const f of Object.keys(DOCS)) for (const b of bashBlocks(f).filter((x) => x.requires === 'docker')) for (const l of b.text.split('\n')) lines.push([`${f}:${b.line}`, l]);
    const compose = parseYaml(fs.readFileSync(path.join(ROOT, 'docs/recipes/docker-compose.yml'), 'utf8')) as { services: Record<string, Record<string, unknown>> };
    // An exec-form command (["jvs", "mount", …]) is one command line; `$$` is Compose's escaped `$`.
    const strings = (v: unknown): string[] =>
      typeof v === 'string'
        ? [v.replace(/\$\$/g, '$')]
        : Array.isArray(v)
          ? v.every((x) => typeof x === 'string')
            ? [v.join(' ')]
            : v.flatMap(strings)
          : v && typeof v === 'object'
            ? Object.values(v).flatMap(strings)
            : [];
    for (const [name, svc] of Object.entries(compose.services)) for (const s of strings([svc.command, svc.entrypoint, svc.healthcheck])) lines.push([`compose service ${name}`, s]);
    const calls = lines.flatMap(([where, l]) => invocations(l).map((args) => [where, args] as const));
    expect(calls.length).toBeGreaterThan(3);
    const problems = calls.flatMap(([where, args]) => checkInvocation(root, args).problems.map((p) => `${where}: jvs ${args.join(' ')}: ${p}`));
    expect(problems).toEqual([]);
  });

  const composeAgent = 'the Compose agent\'s shell commands work against a real jvs mount (as /work)';
  if (mountMissing) {
    console.warn(`\n!!! SKIPPING "${composeAgent}": ${mountMissing}\n`);
    it.runIf(false)(`${composeAgent} [SKIPPED: ${mountMissing}]`, () => {});
  } else {
    itWith('FUSE', fuseMissing, composeAgent, () => {
      const compose = parseYaml(fs.readFileSync(path.join(ROOT, 'docs/recipes/docker-compose.yml'), 'utf8')) as { services: Record<string, any> };
      const [shell, flag, script] = compose.services.agent.command as string[];
      expect([shell, flag]).toEqual(['sh', '-c']);
      const work = tmpDir('jvs-compose-');
      workDirs.push(work);
      const mnt = path.join(work, 'mnt');
      fs.mkdirSync(mnt);
      const env = { PATH: `${shimDir()}:${process.env.PATH}` };
      // What the init and workspace services do, on this machine.
      const init = spawnSync('sh', ['-c', `jvs init ${work}/repo --template python`], { cwd: work, env: { ...process.env, ...env }, encoding: 'utf8' });
      expect(init.status, init.stderr).toBe(0);
      const mount = spawnSync('sh', ['-c', `jvs mount --daemon ${mnt}`], { cwd: path.join(work, 'repo/main'), env: { ...process.env, ...env }, encoding: 'utf8' });
      expect(mount.status, mount.stderr).toBe(0);
      try {
        const agent = spawnSync('sh', ['-c', script!.replace(/\$\$/g, '$').replaceAll('/work/', `${mnt}/`)], { cwd: work, encoding: 'utf8' });
        expect(agent.status, agent.stderr).toBe(0);
        expect(agent.stdout).toContain('"ok": true');
        expect(agent.stdout).toContain('"note": "agent run"');
        expect(agent.stdout).toContain('HEAD');
        expect(fs.readFileSync(path.join(work, 'repo/main/result.txt'), 'utf8')).toMatch(/^result of run \d{8}T\d{6}Z\n$/);
      } finally {
        spawnSync('sh', ['-c', `jvs umount ${mnt}`], { cwd: work, env: { ...process.env, ...env } });
      }
    });
  }

  it('the Compose file gives the mount service FUSE and shares the mount with the agent service', () => {
    const compose = parseYaml(fs.readFileSync(path.join(ROOT, 'docs/recipes/docker-compose.yml'), 'utf8')) as { services: Record<string, any> };
    const ws = compose.services.workspace;
    expect(ws.devices).toContain('/dev/fuse:/dev/fuse');
    expect(ws.cap_add).toContain('SYS_ADMIN');
    const shared = (svc: any) => (svc.volumes as any[]).find((v) => typeof v === 'object' && v.target && v.bind?.propagation);
    expect(shared(ws).bind.propagation).toBe('rshared');
    expect(shared(compose.services.agent).source).toBe(shared(ws).source);
    expect(compose.services.agent.depends_on.workspace.condition).toBe('service_healthy');
  });

  it('the Dockerfile copies only paths that exist in the checkout', () => {
    const text = fs.readFileSync(path.join(ROOT, 'docs/recipes/Dockerfile'), 'utf8');
    const sources = [...text.matchAll(/^COPY (.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(5);
    expect(sources.filter((s) => !fs.existsSync(path.join(ROOT, s)))).toEqual([]);
  });

  it('the Python of the Airflow recipe compiles (recipe file and the DAG snippet)', () => {
    const snippets = [...fs.readFileSync(path.join(ROOT, 'docs/recipes/airflow.md'), 'utf8').matchAll(/^```python\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
    expect(snippets.length).toBe(1);
    const files = [fs.readFileSync(path.join(ROOT, 'docs/recipes/airflow_jvs.py'), 'utf8'), ...snippets];
    for (const src of files) {
      const r = spawnSync('python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read())'], { input: src, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
  });

  it('the block extractor sees blocks and a failing block fails the run (the harness can fail)', () => {
    const dir = tmpDir();
    const f = path.join(dir, 'x.md');
    fs.writeFileSync(f, 'text\n\n```bash\necho one\n```\n\n```bash\n# requires: jvs mount\nls\n```\n\n```bash\nfalse\necho never\n```\n');
    const rel = path.relative(ROOT, f);
    const blocks = bashBlocks(rel);
    expect(blocks.map((b) => b.requires ?? '')).toEqual(['', 'jvs mount', '']);
    const r = runDoc(rel, (b) => !b.requires);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain('one');
    expect(r.stdout).not.toContain('never');
  });
});

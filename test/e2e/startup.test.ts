import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JVS_BIN, JVS_CMD, ROOT, jvs, jvsOk } from '../helpers/cli.js';
import { tmpDir, writeFiles } from '../helpers/tmp.js';

/**
 * Start-up stays light: `jvs --version` and help load only the bundled CLI
 * (dist/cli/jvs.cjs: our modules and commander, scripts/bundle.mjs, run by bin/jvs.cjs);
 * the packages below stay outside the bundle (better-sqlite3: its addon; its JavaScript is
 * bundled and runs only when the index is opened) and must not be loaded. Every module the process loads is recorded by a preload
 * (test/fixtures/recordModules.mjs: an ESM resolve hook, a CommonJS resolve wrapper and
 * a process.dlopen wrapper). Timing is measured by `npm run bench`, not here.
 */
const HEAVY = ['better-sqlite3', 'yaml', 'ignore', 'cli-progress', 'lru-cache'];
const RECORDER = path.join(ROOT, 'test/fixtures/recordModules.mjs');

function loadedBy(args: string[], cwd: string): string[] {
  const log = path.join(tmpDir(), 'modules.log');
  const r = spawnSync(process.execPath, ['--import', RECORDER, JVS_BIN, ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', JVS_MODULE_LOG: log },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`jvs ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return fs.existsSync(log) ? [...new Set(fs.readFileSync(log, 'utf8').split('\n').filter(Boolean))] : [];
}

const packages = (lines: string[]) => [...new Set(lines.flatMap((l) => [...l.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)].map((m) => m[1]!)))].sort();
const heavyIn = (lines: string[]) => packages(lines).filter((p) => HEAVY.includes(p));
const natives = (lines: string[]) => lines.filter((l) => l.startsWith('native ') || /\.node$/.test(l));

describe('start-up', () => {
  for (const args of [['--version'], ['--help'], ['snapshot', '--help'], ['worktree', 'fork', '--help'], ['completion', '--help']]) {
    it(`jvs ${args.join(' ')} loads nothing heavy and no native addon`, () => {
      const lines = loadedBy(args, tmpDir());
      expect(lines.some((l) => l.endsWith('bin/jvs.cjs'))).toBe(true); // the recorder saw the CLI start
      expect(heavyIn(lines)).toEqual([]);
      expect(natives(lines)).toEqual([]);
    });
  }

  it('the recorder does see heavy modules and addons when a command needs them (the check can fail)', () => {
    const dir = tmpDir();
    jvsOk(['init', 'r'], { cwd: dir });
    const main = path.join(dir, 'r/main');
    writeFiles(main, { '.jvsignore': '*.tmp\n', a: '1' });
    const lines = loadedBy(['snapshot', 'first'], main);
    expect(heavyIn(lines)).toContain('ignore');
    expect(natives(lines).some((l) => l.endsWith('jvs_native.node'))).toBe(true);
  });
});

/**
 * bin/jvs.cjs compiles the bundle from the V8 code cache `npm run build` made
 * (scripts/code-cache.cjs), one per set of V8 flags bin/jvs uses, and only when the
 * cache was made from the bundle it is about to run.
 */
describe('code cache', () => {
  const cacheState = (stderr: string) => /jvs trace: code cache (\w+)/.exec(stderr)?.[1];

  it('one-shot commands and the mount daemon (other V8 flags) both start from a cache', () => {
    const dir = tmpDir();
    expect(cacheState(jvsOk(['--version'], { cwd: dir, env: { JVS_TRACE: '1' } }).stderr)).toBe('used');
    jvsOk(['init', 'r'], { cwd: dir });
    const main = path.join(dir, 'r/main');
    writeFiles(main, { a: '1' });
    expect(cacheState(jvsOk(['snapshot', 'first'], { cwd: main, env: { JVS_TRACE: '1' } }).stderr)).toBe('used');
    // mount runs with the launcher's heap flags (bin/jvs): the cache made under them
    expect(cacheState(jvsOk(['mount', '--help'], { cwd: main, env: { JVS_TRACE: '1' } }).stderr)).toBe('used');
    expect(fs.readdirSync(path.join(ROOT, 'dist/cli')).filter((f) => f.endsWith('.cache'))).toHaveLength(2);
  });

  /** A copy of the entry, the bundle and its caches, with `edit` applied to the copied files. */
  function copiedInstall(edit: (bundle: string, caches: string[]) => void): string {
    const root = tmpDir();
    fs.mkdirSync(path.join(root, 'bin'));
    fs.mkdirSync(path.join(root, 'dist/cli'), { recursive: true });
    fs.copyFileSync(JVS_BIN, path.join(root, 'bin/jvs.cjs'));
    fs.copyFileSync(JVS_CMD, path.join(root, 'bin/jvs'));
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(root, 'package.json'));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
    const caches: string[] = [];
    for (const f of fs.readdirSync(path.join(ROOT, 'dist/cli'))) {
      if (f === 'jvs.cjs' || f.endsWith('.cache')) fs.copyFileSync(path.join(ROOT, 'dist/cli', f), path.join(root, 'dist/cli', f));
      if (f.endsWith('.cache')) caches.push(path.join(root, 'dist/cli', f));
    }
    edit(path.join(root, 'dist/cli/jvs.cjs'), caches);
    return path.join(root, 'bin/jvs');
  }

  const version = () => (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

  it('a copied install still uses its cache (the check is on content, not paths or times)', () => {
    const cmd = copiedInstall(() => {});
    const r = spawnSync(cmd, ['--version'], { cwd: tmpDir(), env: { ...process.env, JVS_TRACE: '1' }, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe(version());
    expect(cacheState(r.stderr)).toBe('used');
  });

  it('a cache made from another bundle is not used, even when the bundle keeps its length', () => {
    const cmd = copiedInstall((bundle) => {
      // Same length, different code: V8 alone would accept the cache (it checks the length).
      const text = fs.readFileSync(bundle, 'utf8');
      const old = 'snapshot, restore and fork whole workspaces';
      const at = text.indexOf(old);
      expect(at).toBeGreaterThan(0);
      fs.writeFileSync(bundle, text.slice(0, at) + old.toUpperCase() + text.slice(at + old.length));
    });
    const r = spawnSync(cmd, ['--help'], { cwd: tmpDir(), env: { ...process.env, JVS_TRACE: '1' }, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('SNAPSHOT, RESTORE AND FORK WHOLE WORKSPACES');
    expect(cacheState(r.stderr)).toBe('refused');
  });

  it('a damaged cache is refused and the command still works', () => {
    const cmd = copiedInstall((_bundle, caches) => {
      for (const c of caches) {
        const b = fs.readFileSync(c);
        b.fill(0x5a, 32); // keeps the bundle digest, garbles what V8 reads
        fs.writeFileSync(c, b);
      }
    });
    const r = spawnSync(cmd, ['--version'], { cwd: tmpDir(), env: { ...process.env, JVS_TRACE: '1' }, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe(version());
    expect(cacheState(r.stderr)).toBe('refused');
  });

  it('without a cache the CLI compiles from source', () => {
    const cmd = copiedInstall((_bundle, caches) => caches.forEach((c) => fs.rmSync(c)));
    const r = spawnSync(cmd, ['--version'], { cwd: tmpDir(), env: { ...process.env, JVS_TRACE: '1' }, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe(version());
    expect(cacheState(r.stderr)).toBe('none');
  });
});

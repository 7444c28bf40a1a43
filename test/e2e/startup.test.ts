import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JVS_BIN, ROOT, jvsOk } from '../helpers/cli.js';
import { tmpDir, writeFiles } from '../helpers/tmp.js';

/**
 * Start-up stays light: `jvs --version` and help load only the bundled CLI
 * (dist/cli/jvs.mjs: our modules and commander, scripts/bundle.mjs); the packages
 * below stay outside the bundle and must not be loaded. Every module the process loads is recorded by a preload
 * (test/fixtures/recordModules.mjs: an ESM resolve hook, a CommonJS resolve wrapper and
 * a process.dlopen wrapper). Timing is measured by `npm run bench`, not here.
 */
const HEAVY = ['fuse-native', 'better-sqlite3', 'yaml', 'ignore', 'cli-progress', 'execa', 'lru-cache'];
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
      expect(lines.some((l) => l.endsWith('dist/cli/jvs.mjs'))).toBe(true); // the recorder saw the bundled CLI start
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

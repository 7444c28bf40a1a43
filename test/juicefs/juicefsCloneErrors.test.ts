// cloneTree's contract without a JuiceFS volume: fault injection through stand-in
// `juicefs` executables (scripts that fail the way the real CLI does).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JvsError } from '../../src/errors.js';
import { JuicefsEngine } from '../../src/engines/juicefsEngine.js';
import { tmpDir, writeFiles } from '../helpers/tmp.js';

function fakeCli(dir: string, body: string): string {
  const p = path.join(dir, 'juicefs');
  fs.writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return p;
}

function caught(fn: () => void): JvsError {
  try {
    fn();
  } catch (e) {
    if (e instanceof JvsError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

describe('juicefs-clone cloneTree errors', () => {
  it('refuses an existing destination without running juicefs or touching it', () => {
    const d = tmpDir();
    const marker = path.join(d, 'ran');
    const engine = new JuicefsEngine(fakeCli(d, `touch ${marker}`));
    writeFiles(d, { 'src/a': 'a', 'dst/keep': 'precious' });
    const e = caught(() => engine.cloneTree(path.join(d, 'src'), path.join(d, 'dst')));
    expect(e.code).toBe('E_ALREADY_EXISTS');
    expect(fs.existsSync(marker)).toBe(false);
    expect(fs.readFileSync(path.join(d, 'dst/keep'), 'utf8')).toBe('precious');
  });

  it('turns a failing clone into E_IO with the reason, and removes what it left at the destination', () => {
    const d = tmpDir();
    // Creates part of the destination, then fails like juicefs does (log line on stderr, exit 1).
    const engine = new JuicefsEngine(fakeCli(d, 'mkdir -p "$3/half"; echo "2026/01/01 00:00:00.000000 juicefs[7] <ERROR>: clone: no space left [clone.go:99]" >&2; exit 1'));
    writeFiles(d, { 'src/a': 'a' });
    const e = caught(() => engine.cloneTree(path.join(d, 'src'), path.join(d, 'dst')));
    expect(e.code).toBe('E_IO');
    expect(e.message).toContain('clone: no space left');
    expect(e.hint).toMatch(/JVS_SNAPSHOT_ENGINE=copy/);
    expect(fs.existsSync(path.join(d, 'dst'))).toBe(false);
  });

  it('reports a CLI that cannot be run as E_ENGINE_UNAVAILABLE', () => {
    const d = tmpDir();
    writeFiles(d, { 'src/a': 'a' });
    const engine = new JuicefsEngine(path.join(d, 'no-such-juicefs'));
    expect(caught(() => engine.cloneTree(path.join(d, 'src'), path.join(d, 'dst'))).code).toBe('E_ENGINE_UNAVAILABLE');
  });

  it('passes --preserve and a destination that does not exist yet', () => {
    const d = tmpDir();
    const log = path.join(d, 'args');
    const engine = new JuicefsEngine(fakeCli(d, `[ -e "$3" ] && exit 9; echo "$@" > ${log}; cp -a "$2" "$3"`));
    writeFiles(d, { 'src/a': 'a' });
    engine.cloneTree(path.join(d, 'src'), path.join(d, 'dst'));
    expect(fs.readFileSync(log, 'utf8').trim()).toBe(`clone ${path.join(d, 'src')} ${path.join(d, 'dst')} --preserve`);
    expect(fs.readFileSync(path.join(d, 'dst/a'), 'utf8')).toBe('a');
  });
});

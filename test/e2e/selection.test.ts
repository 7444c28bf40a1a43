import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jvs, jvsOk } from '../helpers/cli.js';
import { readTree, tmpDir, writeFiles } from '../helpers/tmp.js';

function newRepo() {
  const dir = tmpDir();
  jvsOk(['init', 'repo'], { cwd: dir });
  const root = path.join(dir, 'repo');
  return { root, main: path.join(root, 'main') };
}

const snapFiles = (root: string, id: string) =>
  Object.keys(readTree(path.join(root, '.jvs/snapshots', id))).filter((k) => k !== '.READY');

describe('.jvsignore', () => {
  it('ignored paths are neither snapshotted nor touched by restore (Unity Library/ survives)', () => {
    const { root, main } = newRepo();
    writeFiles(main, { '.jvsignore': 'Library/\n*.tmp\n!keep.tmp\n', 'Assets/a.png': 'A1', 'Library/cache.bin': 'C1', 'x.tmp': 't', 'keep.tmp': 'k' });
    const s1 = jvsOk(['snapshot', 'one', '--json'], { cwd: main }).json();
    expect(snapFiles(root, s1.snapshot_id).sort()).toEqual(['.jvsignore', 'Assets/', 'Assets/a.png', 'keep.tmp']);

    writeFiles(main, { 'Assets/a.png': 'A2', 'Library/cache.bin': 'C2', 'Library/new.bin': 'N' });
    jvsOk(['snapshot', 'two'], { cwd: main });
    jvsOk(['restore', s1.snapshot_id], { cwd: main });
    expect(fs.readFileSync(path.join(main, 'Assets/a.png'), 'utf8')).toBe('A1');
    expect(fs.readFileSync(path.join(main, 'Library/cache.bin'), 'utf8')).toBe('C2');
    expect(fs.readFileSync(path.join(main, 'Library/new.bin'), 'utf8')).toBe('N');
    expect(fs.readFileSync(path.join(main, 'x.tmp'), 'utf8')).toBe('t');
  });
});

describe('.jvsignore added after the snapshot', () => {
  it('a folder the worktree now ignores is left alone by restore, with everything below it (even with the index present)', () => {
    const { main } = newRepo();
    writeFiles(main, { 'src/a.txt': 'a1', 'build/out/bin.o': 'old object', 'build/log.txt': 'old log' });
    jvsOk(['snapshot', 'one'], { cwd: main });
    writeFiles(main, { 'src/a.txt': 'a2', 'build/out/bin.o': 'new object', 'build/extra.txt': 'extra', '.jvsignore': 'build/\n' });
    jvsOk(['snapshot', 'two'], { cwd: main });
    jvsOk(['restore', 'one'], { cwd: main });
    const t = readTree(main);
    expect(t['src/a.txt']).toBe('a1');
    expect(t['build/out/bin.o']).toBe('new object');
    expect(t['build/extra.txt']).toBe('extra');
    expect(t['build/log.txt']).toBe('old log');
  });
});

describe('partial snapshots', () => {
  it('--paths records partial_paths and restore of it touches only those paths', () => {
    const { root, main } = newRepo();
    writeFiles(main, { 'Assets/a': '1', 'ProjectSettings/p': '1', 'Other/o': '1' });
    jvsOk(['snapshot', 'full'], { cwd: main });
    writeFiles(main, { 'Assets/a': '2', 'ProjectSettings/p': '2', 'Other/o': '2' });
    const part = jvsOk(['snapshot', 'assets only', '--paths', 'Assets', 'ProjectSettings', '--json'], { cwd: main }).json();
    expect(part.partial_paths).toEqual(['Assets', 'ProjectSettings']);
    const desc = JSON.parse(fs.readFileSync(path.join(root, '.jvs/descriptors', `${part.snapshot_id}.json`), 'utf8'));
    expect(desc.partial_paths).toEqual(['Assets', 'ProjectSettings']);
    expect(snapFiles(root, part.snapshot_id).sort()).toEqual(['Assets/', 'Assets/a', 'ProjectSettings/', 'ProjectSettings/p']);

    writeFiles(main, { 'Assets/a': '3', 'Assets/extra': 'x', 'Other/o': '3' });
    jvsOk(['restore', part.snapshot_id], { cwd: main });
    expect(fs.readFileSync(path.join(main, 'Assets/a'), 'utf8')).toBe('2');
    expect(fs.existsSync(path.join(main, 'Assets/extra'))).toBe(false);
    expect(fs.readFileSync(path.join(main, 'Other/o'), 'utf8')).toBe('3');
    jvsOk(['verify', part.snapshot_id], { cwd: main });
  });

  it('a partial snapshot hides nothing: an unsaved edit outside its paths shows in status and diff and is kept by restore', () => {
    const { main } = newRepo();
    writeFiles(main, { 'Assets/a.png': 'A1', 'Scenes/level.unity': 'L1', 'notes.txt': 'n1' });
    const full = jvsOk(['snapshot', 'full', '--json'], { cwd: main }).json();
    writeFiles(main, { 'Assets/a.png': 'A2', 'Scenes/level.unity': 'L2 unsaved' });
    const art = jvsOk(['snapshot', 'art pass', '--paths', 'Assets', '--json'], { cwd: main }).json();
    const st = jvsOk(['status', '--json'], { cwd: main }).json();
    expect(st).toMatchObject({ clean: false, added: [], modified: ['Scenes/level.unity'], removed: [], compared_with: [full.snapshot_id] });
    expect(jvsOk(['status'], { cwd: main }).stdout).toContain('modified: Scenes/level.unity');
    const d = jvsOk(['diff', '--json'], { cwd: main }).json();
    expect(d).toMatchObject({ from_snapshot_id: art.snapshot_id, added: [], modified: ['Scenes/level.unity'], removed: [] });
    // Another edit outside, a file removed outside: both show; Assets stays clean.
    fs.rmSync(path.join(main, 'notes.txt'));
    expect(jvsOk(['status', '--json'], { cwd: main }).json()).toMatchObject({ modified: ['Scenes/level.unity'], removed: ['notes.txt'] });
    // The same after the index is gone (everything hashed from the payloads).
    fs.rmSync(path.join(main, '../.jvs/index.sqlite'), { force: true });
    expect(jvsOk(['status', '--json'], { cwd: main }).json()).toMatchObject({ modified: ['Scenes/level.unity'], removed: ['notes.txt'] });
    // A restore of the full snapshot would overwrite the edit: it is kept first.
    const r = jvsOk(['restore', full.snapshot_id, '--json'], { cwd: main }).json();
    expect(r.unsaved).toMatchObject({ total_added: 0, total_modified: 1, total_removed: 1 });
    jvsOk(['restore', r.unsaved.snapshot_id], { cwd: main });
    expect(fs.readFileSync(path.join(main, 'Scenes/level.unity'), 'utf8')).toBe('L2 unsaved');
    expect(fs.readFileSync(path.join(main, 'Assets/a.png'), 'utf8')).toBe('A2');
    expect(fs.existsSync(path.join(main, 'notes.txt'))).toBe(false);
  });

  it('paths after -- work like --paths, and a path leaving the worktree is refused', () => {
    const { main } = newRepo();
    writeFiles(main, { 'Assets/a': '1', b: '1' });
    const r = jvsOk(['snapshot', 'dash', '--json', '--', 'Assets'], { cwd: main }).json();
    expect(r.partial_paths).toEqual(['Assets']);
    const esc = jvs(['snapshot', 'bad', '--paths', '../../etc', '--json'], { cwd: main });
    expect(esc.json().error.class).toBe('E_PATH_ESCAPE');
    const missing = jvs(['snapshot', 'bad', '--paths', 'nope', '--json'], { cwd: main });
    expect(missing.json().error.class).toBe('E_NOT_FOUND');
  });
});

describe('pre-snapshot hook', () => {
  it('a non-zero exit aborts with E_HOOK_REJECTED, shows its stderr and publishes nothing', () => {
    const { root, main } = newRepo();
    writeFiles(main, { f: 'x' });
    const hook = path.join(root, '.jvs/hooks/pre-snapshot');
    fs.mkdirSync(path.dirname(hook), { recursive: true });
    fs.writeFileSync(hook, '#!/bin/sh\necho "stage failed: $(pwd)" >&2\nexit 3\n', { mode: 0o755 });
    const r = jvs(['snapshot', 'stage 1'], { cwd: main });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('E_HOOK_REJECTED');
    expect(r.stderr).toContain(`stage failed: ${main}`);
    expect(fs.readdirSync(path.join(root, '.jvs/descriptors'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, '.jvs/snapshots'))).toEqual([]);

    fs.writeFileSync(hook, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    jvsOk(['snapshot', 'stage 1'], { cwd: main });
    expect(fs.readdirSync(path.join(root, '.jvs/descriptors'))).toHaveLength(1);
  });
});

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

describe('core loop through the built binary', () => {
  it('init prints the reference phrase and lays out format v1', () => {
    const dir = tmpDir();
    const r = jvsOk(['init', 'proj'], { cwd: dir });
    expect(r.stdout).toContain(`Initialized JVS repository in ${path.join(dir, 'proj')}`);
    const ctl = path.join(dir, 'proj/.jvs');
    expect(fs.readFileSync(path.join(ctl, 'format_version'), 'utf8')).toBe('1\n');
    expect(fs.readFileSync(path.join(ctl, 'repo_id'), 'utf8')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n$/);
    const cfg = JSON.parse(fs.readFileSync(path.join(ctl, 'worktrees/main/config.json'), 'utf8'));
    expect(cfg.name).toBe('main');
    expect(cfg).not.toHaveProperty('head_snapshot_id');
    expect(fs.statSync(path.join(dir, 'proj/main')).isDirectory()).toBe(true);
  });

  it('snapshot → history → restore → fork keeps content, symlinks, modes and mtimes', () => {
    const { root, main } = newRepo();
    writeFiles(main, { 'a.txt': 'one\n', 'sub/b.bin': 'bee', 'sub/deep/c': 'see' });
    fs.symlinkSync('../a.txt', path.join(main, 'sub/link'));
    fs.chmodSync(path.join(main, 'sub/b.bin'), 0o751);
    fs.utimesSync(path.join(main, 'a.txt'), 1_000_000, 1_234_567);
    fs.linkSync(path.join(main, 'sub/deep/c'), path.join(main, 'hard-c'));

    const s1 = jvsOk(['snapshot', 'first version', '--tag', 'v1', '--json'], { cwd: path.join(main, 'sub') }).json();
    expect(s1.snapshot_id).toMatch(/^\d{13}-[0-9a-f]{8}$/);
    expect(s1.tags).toEqual(['v1']);
    expect(s1.worktree_name).toBe('main');
    expect(s1).not.toHaveProperty('parent_id');
    const before = readTree(main);

    fs.writeFileSync(path.join(main, 'a.txt'), 'two\n');
    fs.rmSync(path.join(main, 'sub/deep'), { recursive: true });
    fs.writeFileSync(path.join(main, 'new.txt'), 'new');
    const s2 = jvsOk(['snapshot', 'second', '--json'], { cwd: main }).json();
    expect(s2.parent_id).toBe(s1.snapshot_id);

    const hist = jvsOk(['history', '--json'], { cwd: main }).json();
    expect(hist.snapshots.map((s: any) => s.snapshot_id)).toEqual([s2.snapshot_id, s1.snapshot_id]);
    expect(hist.snapshots[0].is_head).toBe(true);
    expect(hist.snapshots[1].tags).toEqual(['v1']);

    const r = jvsOk(['restore', 'v1'], { cwd: main });
    expect(r.stdout).toContain(`Restored to snapshot ${s1.snapshot_id}`);
    expect(r.stdout).toContain('Worktree is now in DETACHED state.');
    expect(readTree(main)).toEqual(before);
    expect(fs.statSync(path.join(main, 'sub/b.bin')).mode & 0o7777).toBe(0o751);
    expect(fs.statSync(path.join(main, 'a.txt')).mtimeMs).toBe(1_234_567_000);
    expect(fs.lstatSync(path.join(main, 'sub/link')).isSymbolicLink()).toBe(true);
    expect(fs.statSync(path.join(main, 'hard-c')).ino).toBe(fs.statSync(path.join(main, 'sub/deep/c')).ino);
    // Worktree files are never hard links into a snapshot.
    const snapFile = path.join(root, '.jvs/snapshots', s1.snapshot_id, 'a.txt');
    expect(fs.statSync(path.join(main, 'a.txt')).ino).not.toBe(fs.statSync(snapFile).ino);

    const fork = jvsOk(['worktree', 'fork', s1.snapshot_id.slice(0, 16), 'exp', '--json'], { cwd: main }).json();
    expect(fork.snapshot_id).toBe(s1.snapshot_id);
    expect(readTree(fork.path)).toEqual(before);
    const list = jvsOk(['worktree', 'list', '--json'], { cwd: root }).json();
    expect(list.worktrees.map((w: any) => w.name)).toEqual(['exp', 'main']);
    expect(list.worktrees.find((w: any) => w.name === 'main').detached).toBe(true);
  });

  it('a snapshot of a detached worktree starts a new line and pins the line it left; restore HEAD leaves detached state', () => {
    const { root, main } = newRepo();
    writeFiles(main, { f: '1' });
    const a = jvsOk(['snapshot', 'a', '--json'], { cwd: main }).json();
    writeFiles(main, { f: '2' });
    const b = jvsOk(['snapshot', 'b', '--json'], { cwd: main }).json();
    const restored = jvsOk(['restore', a.snapshot_id], { cwd: main });
    expect(restored.stdout).toContain('Worktree is now in DETACHED state.');
    expect(restored.stdout).toContain(`A snapshot here starts a new line from ${a.snapshot_id}`);

    // History labels HEAD where `jvs restore HEAD` goes (the latest), and the head apart.
    const hist = jvsOk(['history'], { cwd: main }).stdout.split('\n');
    expect(hist.find((l) => l.startsWith(b.snapshot_id))).toContain('HEAD');
    expect(hist.find((l) => l.startsWith(a.snapshot_id))).toContain('restored here, detached');
    expect(hist.find((l) => l.startsWith(a.snapshot_id))).not.toContain('HEAD');

    writeFiles(main, { f: '3' });
    const c = jvsOk(['snapshot', 'c', '--json'], { cwd: main }).json();
    expect(c.parent_id).toBe(a.snapshot_id);
    expect(c.new_line).toEqual({ from_snapshot_id: a.snapshot_id, left_line_tip: b.snapshot_id, pinned: true });
    const st = jvsOk(['status', '--json'], { cwd: main }).json();
    expect(st).toMatchObject({ head_snapshot_id: c.snapshot_id, latest_snapshot_id: c.snapshot_id, detached: false });
    const pin = JSON.parse(fs.readFileSync(path.join(root, '.jvs/pins', `${b.snapshot_id}.json`), 'utf8'));
    expect(pin.reason).toContain("line worktree 'main' left");
    const all = jvsOk(['history', '--all', '--json'], { cwd: main }).json();
    expect(all.snapshots.map((x: any) => x.snapshot_id)).toEqual([c.snapshot_id, b.snapshot_id, a.snapshot_id]);
    expect(all.snapshots.find((x: any) => x.snapshot_id === b.snapshot_id).pinned).toBe(true);
    const line = jvsOk(['history'], { cwd: main });
    expect(line.stdout).toContain('1 more snapshot on other lines or worktrees');

    // The pinned tip survives gc, and the repository verifies.
    const plan = jvsOk(['gc', 'plan', '--json'], { cwd: main }).json();
    expect(plan.to_delete).not.toContain(b.snapshot_id);
    jvsOk(['verify', '--all'], { cwd: main });

    jvsOk(['restore', b.snapshot_id], { cwd: main });
    const back = jvsOk(['restore', 'HEAD'], { cwd: main });
    expect(back.stdout).toContain(`Restored to snapshot ${c.snapshot_id}`);
    expect(back.stdout).toContain('Worktree is now at HEAD state.');
    expect(fs.readFileSync(path.join(main, 'f'), 'utf8')).toBe('3');
  });

  it('restore resolves full id, unique prefix, tag, note prefix, HEAD and --latest-tag', () => {
    const { main } = newRepo();
    const ids: string[] = [];
    for (const [i, tag] of [['1', 'stable'], ['2', 'x'], ['3', 'stable']] as const) {
      writeFiles(main, { f: i });
      ids.push(jvsOk(['snapshot', `note number ${i}`, '--tag', tag, '--json'], { cwd: main }).json().snapshot_id);
    }
    const at = () => fs.readFileSync(path.join(main, 'f'), 'utf8');
    jvsOk(['restore', ids[0]!], { cwd: main });
    expect(at()).toBe('1');
    jvsOk(['restore', 'note number 2'], { cwd: main });
    expect(at()).toBe('2');
    jvsOk(['restore', 'stable'], { cwd: main });
    expect(at()).toBe('3');
    jvsOk(['restore', ids[1]!.slice(0, 18)], { cwd: main });
    expect(at()).toBe('2');
    jvsOk(['restore', '--latest-tag', 'x'], { cwd: main });
    expect(at()).toBe('2');
    jvsOk(['restore', 'HEAD'], { cwd: main });
    expect(at()).toBe('3');

    const amb = jvs(['restore', 'note number', '--json'], { cwd: main });
    expect(amb.json().error.class).toBe('E_AMBIGUOUS_REF');
    expect(amb.json().error.details.candidates).toHaveLength(3);
    const missing = jvs(['restore', 'nope', '--json'], { cwd: main });
    expect(missing.json().error.class).toBe('E_NOT_FOUND');
    expect(missing.json().error.hint).toContain('jvs history');
  });

  it('--json prints exactly one document with the required info and verify fields', () => {
    const { main } = newRepo();
    writeFiles(main, { f: 'x' });
    jvsOk(['snapshot', 'one'], { cwd: main });
    const info = jvsOk(['info', '--json'], { cwd: main }).json();
    expect(info.format_version).toBe(1);
    expect(info.snapshot_engine).toBe('copy');
    expect(info.total_snapshots).toBe(1);
    expect(info.total_worktrees).toBe(1);
    const v = jvsOk(['verify', '--json'], { cwd: main }).json();
    expect(v).toMatchObject({ checksum_valid: true, payload_hash_valid: true, tamper_detected: false, severity: 'ok' });
  });

  it('errors in --json mode are an envelope with class, message and hint, and no stack trace', () => {
    const dir = tmpDir();
    const r = jvs(['history', '--json'], { cwd: dir });
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('');
    const e = r.json().error;
    expect(e.class).toBe('E_NOT_A_REPO');
    expect(e.hint).toContain('jvs init');
    const bad = jvs(['history', '--limit', 'many', '--json'], { cwd: newRepo().main });
    expect(bad.json().error.class).toBe('E_USAGE');
    const unknown = jvs(['frobnicate', '--json'], { cwd: dir });
    expect(unknown.code).toBe(2);
    expect(unknown.json().error.class).toBe('E_USAGE');
    const human = jvs(['restore', 'nope'], { cwd: newRepo().main });
    expect(human.stderr).not.toMatch(/\n\s+at /);
  });

  it('worktree rename, path and remove keep the reference phrases and refuse unsaved work', () => {
    const { root, main } = newRepo();
    writeFiles(main, { f: 'x' });
    const s = jvsOk(['snapshot', 's', '--json'], { cwd: main }).json();
    expect(jvsOk(['worktree', 'fork', 'w1'], { cwd: main }).stdout).toContain(`Created worktree 'w1' from snapshot ${s.snapshot_id}`);
    jvsOk(['worktree', 'rename', 'w1', 'w2'], { cwd: main });
    const p = jvsOk(['worktree', 'path', 'w2'], { cwd: main }).stdout.trim();
    expect(p).toBe(path.join(root, 'worktrees/w2'));
    writeFiles(p, { extra: 'unsaved' });
    const refused = jvs(['worktree', 'remove', 'w2', '--json'], { cwd: main });
    expect(refused.json().error.hint).toContain('--force');
    expect(fs.existsSync(p)).toBe(true);
    expect(jvsOk(['worktree', 'remove', 'w2', '--force'], { cwd: main }).stdout).toContain("Removed worktree 'w2'");
    expect(fs.existsSync(p)).toBe(false);
    // A snapshot in a fork continues the lineage of the forked snapshot.
    jvsOk(['worktree', 'fork', 'w3'], { cwd: main });
    writeFiles(path.join(root, 'worktrees/w3'), { g: 'y' });
    const child = jvsOk(['snapshot', 'in fork', '--json'], { cwd: path.join(root, 'worktrees/w3') }).json();
    expect(child.worktree_name).toBe('w3');
    expect(child.parent_id).toBe(s.snapshot_id);
  });

  it('history says "No snapshots yet." on a new repository', () => {
    const { main } = newRepo();
    expect(jvsOk(['history'], { cwd: main }).stdout).toContain('No snapshots yet.');
  });
});

// The juicefs-clone engine on a real local JuiceFS volume (SQLite metadata, file
// storage), driven through the built binary. Needs `npm run build` first.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jvs, jvsOk } from '../helpers/cli.js';
import { itWith } from '../helpers/prereq.js';
import { tmpDir, writeFiles } from '../helpers/tmp.js';
import { bucketBytes, fuseCounters, fuseReadBytes, juicefsMissing, localVolume, type Volume } from './volume.js';

const missing = juicefsMissing();
let vol: Volume | undefined;
beforeAll(() => {
  if (!missing) vol = localVolume();
});
afterAll(async () => vol?.close());

/** A new repository in a fresh folder on the volume (never at the mount root: JuiceFS keeps .stats, .trash… there). */
function newRepo() {
  const parent = fs.mkdtempSync(path.join(vol!.mounts[0]!, 'case-'));
  jvsOk(['init', 'repo'], { cwd: parent });
  const root = path.join(parent, 'repo');
  return { root, main: path.join(root, 'main') };
}

interface Described {
  type: string;
  mode: number;
  mtimeNs: bigint;
  size?: number;
  content?: string;
  target?: string;
}

/** Every entry below root with type, permission bits, mtime (ns), content or link target. */
function describeTree(root: string, skip: (rel: string) => boolean = () => false): Record<string, Described> {
  const out: Record<string, Described> = {};
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip(r)) continue;
      const abs = path.join(dir, name);
      const st = fs.lstatSync(abs, { bigint: true });
      const base = { mode: Number(st.mode & 0o7777n), mtimeNs: st.mtimeNs };
      if (st.isSymbolicLink()) out[r] = { type: 'symlink', ...base, mode: 0, target: fs.readlinkSync(abs) };
      else if (st.isDirectory()) {
        out[r] = { type: 'dir', ...base };
        walk(abs, r);
      } else out[r] = { type: 'file', ...base, size: Number(st.size), content: fs.readFileSync(abs).toString('base64') };
    }
  };
  walk(root, '');
  return out;
}

function buildWorkspace(main: string): void {
  writeFiles(main, {
    '.jvsignore': 'build/\n',
    'a.txt': 'alpha\n',
    'bin/run.sh': '#!/bin/sh\necho run\n',
    'sub/dir/deep.txt': 'deep',
    'sub/other.bin': randomBytes(100_000).toString('binary'),
    'build/out.o': 'ignored build output',
  });
  fs.mkdirSync(path.join(main, 'empty'));
  fs.chmodSync(path.join(main, 'a.txt'), 0o640);
  fs.chmodSync(path.join(main, 'bin/run.sh'), 0o755);
  fs.symlinkSync('../a.txt', path.join(main, 'sub/link'));
  fs.symlinkSync('does/not/exist', path.join(main, 'dangling'));
  fs.linkSync(path.join(main, 'sub/dir/deep.txt'), path.join(main, 'hard-deep'));
  fs.chmodSync(path.join(main, 'sub/dir'), 0o750);
  // Old, distinct mtimes (with a fractional part) on files and folders, children first.
  let t = 1_600_000_000.25;
  for (const rel of ['a.txt', 'bin/run.sh', 'sub/dir/deep.txt', 'sub/other.bin', 'sub/dir', 'sub', 'bin', 'empty']) {
    fs.utimesSync(path.join(main, rel), t, (t += 1000.5));
  }
}

const ignored = (rel: string) => rel === 'build' || rel.startsWith('build/');

describe('juicefs-clone engine on a local JuiceFS volume', () => {
  itWith('JuiceFS', missing, 'auto-detects juicefs-clone and keeps content, modes, symlinks, hard links and mtimes through snapshot, restore and fork', () => {
    const { root, main } = newRepo();
    buildWorkspace(main);
    const original = describeTree(main, ignored);

    expect(jvsOk(['info', '--json'], { cwd: main }).json().snapshot_engine).toBe('juicefs-clone');
    const s1 = jvsOk(['snapshot', 'first', '--json'], { cwd: main }).json();
    expect(s1.engine).toBe('juicefs-clone');
    expect(s1.degraded).toEqual([]);
    const desc = JSON.parse(fs.readFileSync(path.join(root, '.jvs/descriptors', `${s1.snapshot_id}.json`), 'utf8'));
    expect(desc.engine).toBe('juicefs-clone');
    const snapDir = path.join(root, '.jvs/snapshots', s1.snapshot_id);
    expect(describeTree(snapDir, (rel) => rel === '.READY')).toEqual(original);
    expect(fs.existsSync(path.join(snapDir, 'build'))).toBe(false);
    // The clone gives every path its own inode; the user's hard link is joined again.
    expect(fs.statSync(path.join(snapDir, 'hard-deep')).ino).toBe(fs.statSync(path.join(snapDir, 'sub/dir/deep.txt')).ino);
    const v = jvsOk(['verify', s1.snapshot_id, '--json'], { cwd: main }).json();
    expect(v.payload_hash_valid).toBe(true);
    expect(v.tamper_detected).toBe(false);

    fs.writeFileSync(path.join(main, 'a.txt'), 'changed');
    fs.rmSync(path.join(main, 'sub/dir'), { recursive: true });
    fs.writeFileSync(path.join(main, 'new.txt'), 'new');
    fs.writeFileSync(path.join(main, 'build/out.o'), 'rebuilt');
    const s2 = jvsOk(['snapshot', 'second', '--json'], { cwd: main }).json();
    expect(s2.engine).toBe('juicefs-clone');
    expect(s2.parent_id).toBe(s1.snapshot_id);

    jvsOk(['restore', s1.snapshot_id], { cwd: main });
    expect(describeTree(main, ignored)).toEqual(original);
    expect(fs.readFileSync(path.join(main, 'build/out.o'), 'utf8')).toBe('rebuilt'); // ignored: untouched
    expect(fs.statSync(path.join(main, 'hard-deep')).ino).toBe(fs.statSync(path.join(main, 'sub/dir/deep.txt')).ino);

    const fork = jvsOk(['worktree', 'fork', s1.snapshot_id, 'feature', '--json'], { cwd: main }).json();
    expect(describeTree(fork.path)).toEqual(original);
    expect(fs.existsSync(path.join(fork.path, '.READY'))).toBe(false);
    const forkDesc = JSON.parse(fs.readFileSync(path.join(root, '.jvs/audit/audit.jsonl'), 'utf8').trim().split('\n').at(-1)!);
    expect(forkDesc.event_type).toBe('worktree_create');
    expect(forkDesc.details.engine).toBe('juicefs-clone');
  });

  itWith('JuiceFS', missing, 'a snapshot shares data blocks with its source instead of copying them', () => {
    const { main } = newRepo();
    fs.writeFileSync(path.join(main, 'big.bin'), randomBytes(24 << 20));
    const du = () => bucketBytes(vol!);
    fs.writeFileSync(path.join(main, 'small'), 'x');
    jvsOk(['snapshot', 'warm-up'], { cwd: main }); // syncs: the 24 MiB are in the bucket now
    const before = du();
    const s = jvsOk(['snapshot', 'big', '--json'], { cwd: main }).json();
    expect(s.engine).toBe('juicefs-clone');
    expect(s.bytes).toBeGreaterThanOrEqual(24 << 20);
    // A byte copy would have added 24 MiB of blocks; a clone adds metadata only.
    expect(du() - before).toBeLessThan(1 << 20);
  });

  itWith('JuiceFS', missing, 'restore brings files back by sharing blocks too (copy_file_range), not by copying bytes', () => {
    const { main } = newRepo();
    const content = randomBytes(24 << 20);
    fs.writeFileSync(path.join(main, 'big.bin'), content);
    const s = jvsOk(['snapshot', 'big', '--json'], { cwd: main }).json();
    fs.rmSync(path.join(main, 'big.bin'));
    fs.writeFileSync(path.join(main, 'other'), 'x');
    jvsOk(['snapshot', 'without big'], { cwd: main }); // syncs the volume
    const before = bucketBytes(vol!);
    jvsOk(['restore', s.snapshot_id], { cwd: main });
    expect(fs.readFileSync(path.join(main, 'big.bin')).equals(content)).toBe(true);
    expect(fs.existsSync(path.join(main, 'other'))).toBe(false);
    spawnSync('sync');
    expect(bucketBytes(vol!) - before).toBeLessThan(1 << 20);
  });

  itWith('JuiceFS', missing, 'restore clones a folder missing from the worktree in one juicefs clone, keeping modes, links and mtimes', () => {
    const { main } = newRepo();
    const files: Record<string, string> = { 'keep.txt': 'k' };
    for (let i = 0; i < 50; i++) files[`assets/sub${i % 5}/f${i}.bin`] = `asset ${i}`;
    writeFiles(main, files);
    fs.chmodSync(path.join(main, 'assets/sub1'), 0o750);
    fs.symlinkSync('sub0/f0.bin', path.join(main, 'assets/link'));
    fs.utimesSync(path.join(main, 'assets/sub2/f2.bin'), 1_400_000_000, 1_400_000_000.5);
    const original = describeTree(main);
    const s = jvsOk(['snapshot', 'assets', '--json'], { cwd: main }).json();
    fs.rmSync(path.join(main, 'assets'), { recursive: true });
    const before = fuseCounters(vol!);
    const r = jvsOk(['restore', s.snapshot_id, '--json'], { cwd: main }).json();
    const after = fuseCounters(vol!);
    expect(r.files_written).toBe(50);
    expect(describeTree(main)).toEqual(original);
    expect(after.clones - before.clones).toBe(1);
    expect(after.copyFileRange - before.copyFileRange).toBe(0);
  });

  itWith('JuiceFS', missing, 'restore into an emptied worktree is a single clone; hard links across folders and ignored files survive', () => {
    const { main } = newRepo();
    buildWorkspace(main);
    fs.linkSync(path.join(main, 'bin/run.sh'), path.join(main, 'sub/run-link.sh'));
    const original = describeTree(main, ignored);
    const s = jvsOk(['snapshot', 'all', '--json'], { cwd: main }).json();
    for (const e of fs.readdirSync(main)) if (e !== 'build') fs.rmSync(path.join(main, e), { recursive: true });
    const before = fuseCounters(vol!);
    const r = jvsOk(['restore', s.snapshot_id, '--json'], { cwd: main }).json();
    const after = fuseCounters(vol!);
    expect(after.clones - before.clones).toBe(1);
    expect(after.copyFileRange - before.copyFileRange).toBe(0);
    expect(r.files_written).toBeGreaterThan(0);
    expect(describeTree(main, ignored)).toEqual(original);
    expect(fs.readFileSync(path.join(main, 'build/out.o'), 'utf8')).toBe('ignored build output');
    expect(fs.statSync(path.join(main, 'sub/run-link.sh')).ino).toBe(fs.statSync(path.join(main, 'bin/run.sh')).ino);
    expect(fs.statSync(path.join(main, 'hard-deep')).ino).toBe(fs.statSync(path.join(main, 'sub/dir/deep.txt')).ino);
    expect(fs.readdirSync(main).filter((n) => n.includes('.jvs-tmp-'))).toEqual([]);
    expect(jvsOk(['status', '--json'], { cwd: main }).json().clean).toBe(true);
  });

  itWith('JuiceFS', missing, 'a snapshot of a mostly unchanged tree takes hashes from the index instead of reading the clone', () => {
    const { root, main } = newRepo();
    writeFiles(main, { 'small.txt': 'v1' });
    fs.writeFileSync(path.join(main, 'big1.bin'), randomBytes(12 << 20));
    fs.writeFileSync(path.join(main, 'big2.bin'), randomBytes(12 << 20));
    const s1 = jvsOk(['snapshot', 'first', '--json'], { cwd: main }).json();
    fs.writeFileSync(path.join(main, 'small.txt'), 'v2');
    // Bytes read through this JuiceFS client (its .stats counter): every read of a cloned
    // file goes through FUSE, since a clone is a new inode with nothing in the page cache.
    const before = fuseReadBytes(vol!);
    const s2 = jvsOk(['snapshot', 'second', '--json'], { cwd: main }).json();
    const read = fuseReadBytes(vol!) - before;
    expect(s2.engine).toBe('juicefs-clone');
    expect(read).toBeLessThan(4 << 20); // re-hashing would read the 24 MiB of big files
    const v = jvsOk(['verify', s2.snapshot_id, '--json'], { cwd: main }).json();
    expect(v.payload_hash_valid).toBe(true);
    expect(s2.payload_root_hash).not.toBe(s1.payload_root_hash);
    expect(fs.readFileSync(path.join(root, '.jvs/snapshots', s2.snapshot_id, 'small.txt'), 'utf8')).toBe('v2');
  });

  itWith('JuiceFS', missing, 'a same-size edit with the old mtime put back is still snapshotted (JuiceFS moves ctime)', () => {
    const { root, main } = newRepo();
    writeFiles(main, { 'data.bin': 'AAAA', 'other.txt': 'o' });
    fs.utimesSync(path.join(main, 'data.bin'), 1_500_000_000, 1_500_000_000);
    jvsOk(['snapshot', 'first'], { cwd: main });
    fs.writeFileSync(path.join(main, 'data.bin'), 'BBBB');
    fs.utimesSync(path.join(main, 'data.bin'), 1_500_000_000, 1_500_000_000);
    const s2 = jvsOk(['snapshot', 'second', '--json'], { cwd: main }).json();
    expect(fs.readFileSync(path.join(root, '.jvs/snapshots', s2.snapshot_id, 'data.bin'), 'utf8')).toBe('BBBB');
    expect(jvsOk(['verify', s2.snapshot_id, '--json'], { cwd: main }).json().payload_hash_valid).toBe(true);
  });

  itWith('JuiceFS', missing, 'honours --paths: a partial snapshot clone holds only the selected paths', () => {
    const { root, main } = newRepo();
    writeFiles(main, { 'Assets/a': '1', 'Assets/sub/b': '2', 'ProjectSettings/p': '3', 'Other/o': '4', 'top.txt': '5' });
    const s = jvsOk(['snapshot', 'assets', '--paths', 'Assets', '--json'], { cwd: main }).json();
    expect(s.engine).toBe('juicefs-clone');
    const snapDir = path.join(root, '.jvs/snapshots', s.snapshot_id);
    expect(Object.keys(describeTree(snapDir, (r) => r === '.READY')).sort()).toEqual(['Assets', 'Assets/a', 'Assets/sub', 'Assets/sub/b']);
    expect(jvsOk(['verify', s.snapshot_id, '--json'], { cwd: main }).json().payload_hash_valid).toBe(true);
  });

  itWith('JuiceFS', missing, 'an ignored top-level folder (Unity Library/) is neither cloned nor deleted, and restore leaves it alone', () => {
    const { root, main } = newRepo();
    const files: Record<string, string> = { '.jvsignore': 'Library/\n', 'Assets/a.png': 'A1', 'ProjectSettings/p.asset': 'P', 'top.sln': 'S' };
    for (let i = 0; i < 200; i++) files[`Library/cache/${i}.bin`] = `cache ${i}`;
    writeFiles(main, files);
    fs.linkSync(path.join(main, 'top.sln'), path.join(main, 'Assets/sln-link'));
    const before = fuseCounters(vol!);
    const s = jvsOk(['snapshot', 'unity', '--json'], { cwd: main }).json();
    const after = fuseCounters(vol!);
    expect(s.engine).toBe('juicefs-clone');
    const snapDir = path.join(root, '.jvs/snapshots', s.snapshot_id);
    expect(fs.readdirSync(snapDir).sort()).toEqual(['.READY', '.jvsignore', 'Assets', 'ProjectSettings', 'top.sln']);
    expect(fs.statSync(path.join(snapDir, 'Assets/sln-link')).ino).toBe(fs.statSync(path.join(snapDir, 'top.sln')).ino);
    expect(after.clones - before.clones).toBe(2); // Assets/ and ProjectSettings/, not Library/
    expect(after.unlinks - before.unlinks).toBeLessThan(20); // Library's 200 files were never cloned to be removed
    expect(jvsOk(['verify', s.snapshot_id, '--json'], { cwd: main }).json().payload_hash_valid).toBe(true);

    writeFiles(main, { 'Assets/a.png': 'A2', 'Library/cache/0.bin': 'rebuilt' });
    jvsOk(['restore', s.snapshot_id], { cwd: main });
    expect(fs.readFileSync(path.join(main, 'Assets/a.png'), 'utf8')).toBe('A1');
    expect(fs.readFileSync(path.join(main, 'Library/cache/0.bin'), 'utf8')).toBe('rebuilt');
    expect(fs.readdirSync(path.join(main, 'Library/cache'))).toHaveLength(200);
  });

  itWith('JuiceFS', missing, 'a failing juicefs clone is an error that leaves no snapshot and no stage (never a copy)', () => {
    const { root, main } = newRepo();
    writeFiles(main, { 'a.txt': 'a' });
    const first = jvsOk(['snapshot', 'ok', '--json'], { cwd: main }).json();
    // Fault injection: a `juicefs` first on PATH that fails like the real one does.
    const shim = tmpDir('jvs-shim-');
    fs.writeFileSync(path.join(shim, 'juicefs'), '#!/bin/sh\necho "2026/01/01 00:00:00.000000 juicefs[1] <FATAL>: injected clone failure [main@main.go:31]" >&2\nexit 1\n', { mode: 0o755 });
    writeFiles(main, { 'b.txt': 'b' });
    const r = jvs(['snapshot', 'doomed', '--json'], { cwd: main, env: { PATH: `${shim}:${process.env.PATH}` } });
    expect(r.code).not.toBe(0);
    const err = JSON.parse(r.stdout).error;
    expect(err.class).toBe('E_IO');
    expect(err.message).toContain('injected clone failure');
    expect(err.hint).toBeTruthy();
    expect(fs.readdirSync(path.join(root, '.jvs/snapshots'))).toEqual([first.snapshot_id]);
    expect(fs.readdirSync(path.join(root, '.jvs/descriptors'))).toEqual([`${first.snapshot_id}.json`]);
    const hist = jvsOk(['history', '--json'], { cwd: main }).json();
    expect(hist.snapshots.map((x: any) => x.snapshot_id)).toEqual([first.snapshot_id]);
  });

  itWith('JuiceFS', missing, 'on JuiceFS without the juicefs CLI, auto copies and says so in degraded', () => {
    const { main } = newRepo();
    writeFiles(main, { 'a.txt': 'a' });
    const noJuicefs = (process.env.PATH ?? '').split(':').filter((d) => d && !fs.existsSync(path.join(d, 'juicefs'))).join(':');
    const s = jvsOk(['snapshot', 'no cli', '--json'], { cwd: main, env: { PATH: noJuicefs } }).json();
    expect(s.engine).toBe('copy');
    expect(s.degraded.join('\n')).toMatch(/juicefs CLI is not on PATH/);
    const named = jvs(['snapshot', 'named', '--json'], { cwd: main, env: { PATH: noJuicefs, JVS_SNAPSHOT_ENGINE: 'juicefs-clone' } });
    expect(named.code).not.toBe(0);
    expect(JSON.parse(named.stdout).error.class).toBe('E_ENGINE_UNAVAILABLE');
  });
});

describe('juicefs-clone off JuiceFS', () => {
  it('JVS_SNAPSHOT_ENGINE=juicefs-clone on a non-JuiceFS folder fails with E_ENGINE_UNAVAILABLE and a hint', () => {
    const dir = tmpDir();
    jvsOk(['init', 'repo'], { cwd: dir });
    const main = path.join(dir, 'repo/main');
    writeFiles(main, { 'a.txt': 'a' });
    const r = jvs(['snapshot', 'x', '--json'], { cwd: main, env: { JVS_SNAPSHOT_ENGINE: 'juicefs-clone' } });
    expect(r.code).not.toBe(0);
    const err = JSON.parse(r.stdout).error;
    expect(err.class).toBe('E_ENGINE_UNAVAILABLE');
    expect(err.message).toContain('not on a JuiceFS mount');
    expect(err.hint).toMatch(/juicefs mount|JVS_SNAPSHOT_ENGINE/);
    expect(fs.readdirSync(path.join(dir, 'repo/.jvs/snapshots'))).toEqual([]);
  });
});

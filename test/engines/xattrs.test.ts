import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { jvsOk } from '../helpers/cli.js';
import { itWith } from '../helpers/prereq.js';
import { loopFsMissing, mountLoopFs, type LoopFs } from '../helpers/loopfs.js';
import { tmpDir, writeFiles } from '../helpers/tmp.js';

/*
 * Extended attributes through snapshot, restore and fork (src/engines/xattrs.ts,
 * native/jvs_xattr.c). Python's os.*xattr calls are the independent witness: they set
 * the attributes and read them back, so a test never trusts the addon to check itself.
 */

const isRoot = process.getuid?.() === 0;

/** Run xattr calls through Python: ops are [verb, path, name?, value?]; returns each read as {name: value}. */
function py(ops: Array<[string, string, string?, string?]>): Array<Record<string, string>> {
  const script = `
import json, os, sys
out = []
for verb, p, name, value in json.load(sys.stdin):
    if verb == 'set': os.setxattr(p, name, value.encode(), follow_symlinks=False)
    elif verb == 'del': os.removexattr(p, name, follow_symlinks=False)
    elif verb == 'get':
        out.append({n: os.getxattr(p, n, follow_symlinks=False).decode() for n in sorted(os.listxattr(p, follow_symlinks=False))})
print(json.dumps(out))
`;
  const r = spawnSync('python3', ['-c', script], { input: JSON.stringify(ops.map((o) => [o[0], o[1], o[2] ?? null, o[3] ?? null])), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 xattr helper failed: ${r.stderr}${r.error?.message ?? ''}`);
  return JSON.parse(r.stdout) as Array<Record<string, string>>;
}
const getx = (...paths: string[]) => py(paths.map((p) => ['get', p]));
const pythonMissing = spawnSync('python3', ['-c', 'import os; os.getxattr']).status === 0 ? undefined : 'python3 with os.getxattr (the independent xattr witness)';

/** A repository whose worktree holds attributes on a file, a folder, a symlink and the root. */
function repoWithXattrs(env: Record<string, string> = {}): { repo: string; main: string; id: string; snap: (id: string) => string } {
  const base = tmpDir('jvs-xattr-');
  jvsOk(['init', 'r'], { cwd: base, env });
  const repo = path.join(base, 'r');
  const main = path.join(repo, 'main');
  writeFiles(main, { 'a.txt': 'alpha\n', 'dir/b.bin': 'bravo\n', 'plain.txt': 'no attributes\n' });
  fs.symlinkSync('a.txt', path.join(main, 'link'));
  py([
    ['set', `${main}/a.txt`, 'user.note', 'first'],
    ['set', `${main}/a.txt`, 'user.colour', 'blue'],
    ['set', `${main}/dir`, 'user.dir', 'folder'],
    ['set', `${main}/dir/b.bin`, 'user.b', 'bee'],
    ['set', main, 'user.root', 'top'],
    // Linux refuses user.* on symlinks; trusted.* (root) is the namespace a link can carry.
    ...(isRoot ? ([['set', `${main}/link`, 'trusted.link', 'L'], ['set', `${main}/dir/b.bin`, 'trusted.t', 'T'], ['set', `${main}/dir/b.bin`, 'security.jvs', 'S']] as Array<[string, string, string, string]>) : []),
  ]);
  const r = jvsOk(['snapshot', 'with attributes', '--json'], { cwd: main, env }).json<{ snapshot_id: string; degraded: string[] }>();
  return { repo, main, id: r.snapshot_id, snap: (id) => path.join(repo, '.jvs/snapshots', id) };
}

function lastAudit(repo: string): { event_type: string; details?: { degraded?: string[] } } {
  const lines = fs.readFileSync(path.join(repo, '.jvs/audit/audit.jsonl'), 'utf8').trim().split('\n');
  return JSON.parse(lines.at(-1)!);
}

const FIRST = { 'user.colour': 'blue', 'user.note': 'first' };
const B = isRoot ? { 'security.jvs': 'S', 'trusted.t': 'T', 'user.b': 'bee' } : { 'user.b': 'bee' };
const LINK = isRoot ? { 'trusted.link': 'L' } : {};

describe('extended attributes with the addon', () => {
  itWith('python3', pythonMissing, 'a snapshot keeps user.* (and as root trusted.* and security.*) on files, folders, symlinks and the root', () => {
    const { repo, main, id, snap } = repoWithXattrs();
    const s = snap(id);
    expect(getx(`${s}/a.txt`, `${s}/dir`, `${s}/dir/b.bin`, `${s}/link`, s, `${s}/plain.txt`)).toEqual([FIRST, { 'user.dir': 'folder' }, B, LINK, { 'user.root': 'top' }, {}]);
    expect(lastAudit(repo).details?.degraded).toBeUndefined();
    // The worktree's own attributes are untouched by the snapshot.
    expect(getx(`${main}/a.txt`)).toEqual([FIRST]);
  });

  itWith('python3', pythonMissing, 'an xattr-only change is a change: the next snapshot records it, the parent keeps its own', () => {
    const { main, id, snap } = repoWithXattrs();
    py([['set', `${main}/a.txt`, 'user.note', 'second']]);
    const r = jvsOk(['snapshot', 'attribute changed', '--json'], { cwd: main }).json<{ snapshot_id: string; degraded: string[] }>();
    expect(r.degraded).toEqual([]);
    expect(getx(`${snap(r.snapshot_id)}/a.txt`, `${snap(id)}/a.txt`)).toEqual([{ ...FIRST, 'user.note': 'second' }, FIRST]);
    // Unchanged files are still shared with the parent (the change detection did not get coarser).
    expect(fs.statSync(`${snap(r.snapshot_id)}/plain.txt`).ino).toBe(fs.statSync(`${snap(id)}/plain.txt`).ino);
    expect(fs.statSync(`${snap(r.snapshot_id)}/a.txt`).ino).not.toBe(fs.statSync(`${snap(id)}/a.txt`).ino);
  });

  itWith('python3', pythonMissing, 'restore brings the attributes back exactly: changed, removed and added ones, on unchanged and rewritten files', () => {
    const { repo, main, id } = repoWithXattrs();
    py([
      ['set', `${main}/a.txt`, 'user.note', 'scribbled'],
      ['del', `${main}/a.txt`, 'user.colour'],
      ['set', `${main}/plain.txt`, 'user.extra', 'x'],
      ['del', `${main}/dir`, 'user.dir'],
      ['del', main, 'user.root'],
    ]);
    fs.writeFileSync(`${main}/dir/b.bin`, 'rewritten\n'); // content changed: the file is replaced
    const r = jvsOk(['restore', id, '--discard-changes', '--json'], { cwd: main }).json<{ degraded?: string[] }>();
    expect(r.degraded).toBeUndefined();
    expect(getx(`${main}/a.txt`, `${main}/plain.txt`, `${main}/dir`, `${main}/dir/b.bin`, `${main}/link`, main)).toEqual([FIRST, {}, { 'user.dir': 'folder' }, B, LINK, { 'user.root': 'top' }]);
    expect(fs.readFileSync(`${main}/dir/b.bin`, 'utf8')).toBe('bravo\n');
    expect(lastAudit(repo).event_type).toBe('restore');
    // The restored worktree is clean, and a snapshot of it needs no copy of a.txt.
    expect(jvsOk(['status', '--json'], { cwd: main }).json<{ clean?: boolean; total_modified?: number }>().total_modified ?? 0).toBe(0);
  });

  itWith('python3', pythonMissing, 'restore between two snapshots whose file differs only in its attributes sets them, though the worktree state vouches for its content', () => {
    const { main, id } = repoWithXattrs();
    py([['set', `${main}/a.txt`, 'user.note', 'second']]);
    const second = jvsOk(['snapshot', 'second', '--json'], { cwd: main }).json<{ snapshot_id: string }>().snapshot_id;
    // The worktree is clean at `second`: a.txt's stat is what its state recorded.
    jvsOk(['restore', id], { cwd: main });
    expect(getx(`${main}/a.txt`)).toEqual([FIRST]);
    jvsOk(['restore', second], { cwd: main });
    expect(getx(`${main}/a.txt`)).toEqual([{ ...FIRST, 'user.note': 'second' }]);
  });

  itWith('python3', pythonMissing, 'in a repository without any attributes (the fast path) restore still removes ones added since to a file and a folder', () => {
    const base = tmpDir('jvs-xattr-');
    jvsOk(['init', 'r'], { cwd: base });
    const main = path.join(base, 'r/main');
    writeFiles(main, { 'a.txt': 'alpha\n', 'dir/b.txt': 'b\n' });
    jvsOk(['snapshot', 'plain'], { cwd: main });
    py([['set', `${main}/a.txt`, 'user.new', '1'], ['set', `${main}/dir`, 'user.new', '2'], ['set', main, 'user.new', '3']]);
    jvsOk(['restore', 'HEAD', '--discard-changes'], { cwd: main });
    expect(getx(`${main}/a.txt`, `${main}/dir`, `${main}/dir/b.txt`, main)).toEqual([{}, {}, {}, {}]);
  });

  itWith('python3', pythonMissing, 'a fork carries the snapshot\'s attributes (and the restore and fork of a repository without an index too)', () => {
    const { repo, main, id } = repoWithXattrs();
    const r = jvsOk(['worktree', 'fork', id, 'f', '--json'], { cwd: main }).json<{ path: string; degraded?: string[] }>();
    expect(r.degraded).toBeUndefined();
    const f = r.path;
    expect(getx(`${f}/a.txt`, `${f}/dir`, `${f}/dir/b.bin`, `${f}/link`, f)).toEqual([FIRST, { 'user.dir': 'folder' }, B, LINK, { 'user.root': 'top' }]);
    // Without the index (a cache): the fork and the restore walk the snapshot instead.
    fs.rmSync(path.join(repo, '.jvs/index.sqlite'), { force: true });
    const g = jvsOk(['worktree', 'fork', id, 'g', '--json'], { cwd: main }).json<{ path: string }>().path;
    expect(getx(`${g}/a.txt`, `${g}/dir/b.bin`, g)).toEqual([FIRST, B, { 'user.root': 'top' }]);
    py([['del', `${main}/a.txt`, 'user.note']]);
    fs.rmSync(path.join(repo, '.jvs/index.sqlite'), { force: true });
    jvsOk(['restore', id, '--discard-changes'], { cwd: main });
    expect(getx(`${main}/a.txt`)).toEqual([FIRST]);
  });
});

describe('extended attributes that cannot be kept are reported', () => {
  itWith('python3', pythonMissing, 'without the addon (JVS_DISABLE_NATIVE=1) snapshot, restore and fork say in `degraded` and the audit record that attributes were not copied', () => {
    const env = { JVS_DISABLE_NATIVE: '1' };
    const { repo, main, snap } = repoWithXattrs(env);
    const snapped = lastAudit(repo);
    expect(snapped.event_type).toBe('snapshot_create');
    expect(snapped.details?.degraded?.join('\n')).toMatch(/extended attributes were not copied: the native addon is not loaded/);
    const id = jvsOk(['history', '--json'], { cwd: main }).json<{ snapshots: Array<{ snapshot_id: string }> }>().snapshots[0]!.snapshot_id;
    // It is true: the snapshot's copy has none.
    expect(getx(`${snap(id)}/a.txt`)).toEqual([{}]);
    const r = jvsOk(['restore', id, '--discard-changes', '--json'], { cwd: main, env }).json<{ degraded?: string[] }>();
    expect(r.degraded?.join('\n')).toMatch(/native addon is not loaded/);
    expect(lastAudit(repo).details?.degraded).toEqual(r.degraded);
    const human = jvsOk(['worktree', 'fork', id, 'f'], { cwd: main, env });
    expect(human.stdout + human.stderr).toMatch(/warning: extended attributes were not copied/);
    expect(lastAudit(repo).details?.degraded?.join('\n')).toMatch(/native addon is not loaded/);
  });

  itWith('python3', pythonMissing, 'a compressed snapshot of a worktree with attributes says it does not hold them; one without attributes says nothing', () => {
    const { main } = repoWithXattrs();
    writeFiles(main, { 'new.txt': 'n\n' });
    // Only unchanged files keep attributes now: they are linked from the parent, not copied.
    py([['del', main, 'user.root'], ['del', `${main}/dir`, 'user.dir']]);
    const r = jvsOk(['snapshot', 'gz', '--compress', 'fast', '--json'], { cwd: main }).json<{ degraded: string[] }>();
    expect(r.degraded.join('\n')).toMatch(/not kept by compressed snapshots/);
    const base = tmpDir('jvs-xattr-');
    jvsOk(['init', 'r'], { cwd: base });
    writeFiles(path.join(base, 'r/main'), { 'a.txt': 'a\n' });
    expect(jvsOk(['snapshot', 'gz', '--compress', 'fast', '--json'], { cwd: path.join(base, 'r/main') }).json<{ degraded: string[] }>().degraded).toEqual([]);
  });

  const ramfsMissing = !isRoot ? 'root (mounting ramfs)' : pythonMissing;
  let mounted: string | undefined;
  afterEach(() => {
    if (mounted) spawnSync('umount', ['-l', mounted]);
    mounted = undefined;
  });

  itWith('root and python3', ramfsMissing, 'a restore into a worktree on a filesystem without extended attributes (ramfs) lists each lost attribute in `degraded` and the audit record', () => {
    const { repo, main, id } = repoWithXattrs();
    // The worktree folder becomes a ramfs mount: same repository, a filesystem that keeps no xattrs.
    const m = spawnSync('mount', ['-t', 'ramfs', 'ramfs', main], { encoding: 'utf8' });
    expect(m.status, m.stderr).toBe(0);
    mounted = main;
    expect(() => py([['set', `${main}`, 'user.probe', '1']])).toThrow(/Operation not supported/);
    const r = jvsOk(['restore', id, '--discard-changes', '--json'], { cwd: repo }).json<{ degraded?: string[]; files_written: number }>();
    expect(fs.readFileSync(`${main}/a.txt`, 'utf8')).toBe('alpha\n');
    const lost = r.degraded ?? [];
    expect(lost).toContain("extended attribute user.note of a.txt not kept (EOPNOTSUPP: the destination's filesystem keeps no extended attributes)");
    expect(lost).toContain("extended attribute user.dir of dir not kept (EOPNOTSUPP: the destination's filesystem keeps no extended attributes)");
    expect(lost).toContain("extended attribute user.root of . not kept (EOPNOTSUPP: the destination's filesystem keeps no extended attributes)");
    expect(lost.some((l) => l.includes('plain.txt'))).toBe(false);
    const audit = lastAudit(repo);
    expect(audit.event_type).toBe('restore');
    expect(audit.details?.degraded).toEqual(lost);
  });
});

describe('extended attributes on the reflink engine', () => {
  let xfs: LoopFs | undefined;
  afterEach(() => {
    xfs?.unmount();
    xfs = undefined;
  });
  itWith('XFS loop mount and python3', loopFsMissing('xfs') ?? pythonMissing, 'FICLONE copies no attributes; the snapshot and the restore still carry them', () => {
    xfs = mountLoopFs('xfs', 300);
    const env = { TMPDIR: xfs.mountpoint, JVS_SNAPSHOT_ENGINE: 'reflink-copy' };
    jvsOk(['init', 'r'], { cwd: xfs.mountpoint, env });
    const main = path.join(xfs.mountpoint, 'r/main');
    writeFiles(main, { 'a.txt': 'alpha\n'.repeat(1000) });
    py([['set', `${main}/a.txt`, 'user.note', 'first']]);
    const r = jvsOk(['snapshot', 'x', '--json'], { cwd: main, env }).json<{ snapshot_id: string; engine: string; degraded: string[] }>();
    expect(r.engine).toBe('reflink-copy');
    expect(r.degraded).toEqual([]);
    expect(getx(path.join(xfs.mountpoint, 'r/.jvs/snapshots', r.snapshot_id, 'a.txt'))).toEqual([{ 'user.note': 'first' }]);
    fs.writeFileSync(`${main}/a.txt`, 'changed');
    py([['del', `${main}/a.txt`, 'user.note']]);
    jvsOk(['restore', r.snapshot_id, '--discard-changes'], { cwd: main, env });
    expect(getx(`${main}/a.txt`)).toEqual([{ 'user.note': 'first' }]);
  });
});

it('the xattr witness works here (python3 reads what it set)', () => {
  if (pythonMissing) throw new Error(`missing ${pythonMissing}`);
  const d = tmpDir();
  fs.writeFileSync(`${d}/f`, '');
  expect(py([['set', `${d}/f`, 'user.k', 'v'], ['get', `${d}/f`]])).toEqual([{ 'user.k': 'v' }]);
});

// Extended attributes through the libfuse 3 mount (native/fuse/ops.c): current/ reads
// and writes them on the backing files, snapshot trees show theirs read-only (EROFS).
// Python's os.*xattr calls are the witness, on the mount and on the backing files.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it as plainIt } from 'vitest';
import { jvs, jvsOk } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';
import { itWith } from '../helpers/prereq.js';
import { fuse3Missing, MOUNT_MODES, mountNewRepo, shOk, snapshotIds, useMountEnv } from './mountHelpers.js';

const pythonMissing = spawnSync('python3', ['-c', 'import os; os.getxattr']).status === 0 ? undefined : 'python3 with os.getxattr (the xattr witness)';
const MISSING = fuse3Missing() ?? pythonMissing;
const it = (name: string, fn: () => unknown | Promise<unknown>) => itWith('FUSE and python3', MISSING, name, fn, 180_000);
const isRoot = process.getuid?.() === 0;

/** Each op [verb, path, name?, value?] through Python; returns each `get` as {name: value} and each failure as its errno name. */
function py(ops: Array<[string, string, string?, string?]>): Array<Record<string, string> | string> {
  const script = `
import errno, json, os, sys
out = []
for verb, p, name, value in json.load(sys.stdin):
    try:
        if verb == 'set': os.setxattr(p, name, value.encode(), follow_symlinks=False)
        elif verb == 'del': os.removexattr(p, name, follow_symlinks=False)
        elif verb == 'get':
            out.append({n: os.getxattr(p, n, follow_symlinks=False).decode() for n in sorted(os.listxattr(p, follow_symlinks=False))})
    except OSError as e:
        out.append(errno.errorcode[e.errno])
print(json.dumps(out))
`;
  const r = spawnSync('python3', ['-c', script], { input: JSON.stringify(ops.map((o) => [o[0], o[1], o[2] ?? null, o[3] ?? null])), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 xattr helper failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe.each(MOUNT_MODES.filter((m) => m.impl === 'll'))('extended attributes through the mount ($name)', ({ env }) => {
  beforeAll(() => useMountEnv(env));

  it('current/ sets, lists, reads and removes them on the backing files (file, folder, and as root a symlink)', () => {
    const m = mountNewRepo({ 'a.txt': 'alpha\n', 'dir/b.txt': 'b\n' }, ['--xattrs']);
    const cur = path.join(m.mnt, 'current');
    fs.symlinkSync('a.txt', path.join(cur, 'link'));
    const sets: Array<[string, string, string?, string?]> = [
      ['set', `${cur}/a.txt`, 'user.note', 'through the mount'],
      ['set', `${cur}/a.txt`, 'user.gone', 'soon'],
      ['set', `${cur}/dir`, 'user.dir', 'folder'],
      ['del', `${cur}/a.txt`, 'user.gone'],
      ['del', `${cur}/a.txt`, 'user.never'],
      ...(isRoot ? ([['set', `${cur}/link`, 'trusted.link', 'L']] as Array<[string, string, string, string]>) : []),
    ];
    const out = py([...sets, ['get', `${cur}/a.txt`], ['get', `${cur}/dir`], ['get', `${cur}/link`]]);
    const link = isRoot ? { 'trusted.link': 'L' } : {};
    expect(out).toEqual(['ENODATA', { 'user.note': 'through the mount' }, { 'user.dir': 'folder' }, link]);
    // The backing files hold them (not a cache of the daemon's).
    expect(py([['get', `${m.main}/a.txt`], ['get', `${m.main}/dir`], ['get', `${m.main}/link`]])).toEqual([{ 'user.note': 'through the mount' }, { 'user.dir': 'folder' }, link]);
    // And what is set behind the mount's back is read through it.
    py([['set', `${m.main}/dir/b.txt`, 'user.behind', 'yes']]);
    expect(py([['get', `${cur}/dir/b.txt`]])).toEqual([{ 'user.behind': 'yes' }]);
  });

  it('a control-file snapshot keeps an xattr-only change made through the mount; its tree shows them and refuses changes with EROFS', () => {
    const m = mountNewRepo({ 'a.txt': 'alpha\n' }, ['--xattrs']);
    const cur = path.join(m.mnt, 'current');
    py([['set', `${cur}/a.txt`, 'user.v', '1']]);
    shOk('echo one > .jvs/ctl/snapshot', m.mnt);
    py([['set', `${cur}/a.txt`, 'user.v', '2']]);
    shOk('echo two > .jvs/ctl/snapshot', m.mnt);
    const [one, two] = snapshotIds(m.mnt);
    const snaps = path.join(m.mnt, '.jvs/snapshots');
    expect(py([['get', `${snaps}/${one}/a.txt`], ['get', `${snaps}/${two}/a.txt`]])).toEqual([{ 'user.v': '1' }, { 'user.v': '2' }]);
    expect(py([['set', `${snaps}/${two}/a.txt`, 'user.v', '3'], ['del', `${snaps}/${two}/a.txt`, 'user.v'], ['get', `${snaps}/${two}/a.txt`]])).toEqual(['EROFS', 'EROFS', { 'user.v': '2' }]);
    // A control-file restore of the first brings its value back.
    shOk(`echo ${one} > .jvs/ctl/restore`, m.mnt);
    expect(py([['get', `${cur}/a.txt`]])).toEqual([{ 'user.v': '1' }]);
  });

  it('without --xattrs the mount refuses them loudly (EOPNOTSUPP), never dropping a set silently', () => {
    const m = mountNewRepo({ 'a.txt': 'alpha\n' });
    py([['set', `${m.main}/a.txt`, 'user.behind', 'yes']]);
    const cur = path.join(m.mnt, 'current');
    expect(py([['set', `${cur}/a.txt`, 'user.v', '1'], ['get', `${cur}/a.txt`]])).toEqual(['ENOTSUP', 'ENOTSUP']); // errno 95: EOPNOTSUPP, which Python names ENOTSUP
    expect(py([['get', `${m.main}/a.txt`]])).toEqual([{ 'user.behind': 'yes' }]);
  });
});

describe('--xattrs on the fuse-native comparison mount', () => {
  plainIt('is refused with E_USAGE before anything is mounted', () => {
    const dir = tmpDir();
    jvsOk(['init', 'r'], { cwd: dir });
    const mnt = path.join(dir, 'mnt');
    fs.mkdirSync(mnt);
    const r = jvs(['mount', '--xattrs', '--json', mnt], { cwd: path.join(dir, 'r/main'), env: { JVS_MOUNT_IMPL: 'fuse-native' } });
    expect(r.code).not.toBe(0);
    expect(r.json().error.class).toBe('E_USAGE');
    expect(r.json().error.message).toContain('--xattrs needs the libfuse 3 mount');
    expect(fs.readdirSync(mnt)).toEqual([]);
  });
});

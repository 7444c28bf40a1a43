// Extended attributes through the libfuse 3 mount (native/fuse/ops.c): current/ reads
// and writes them on the backing files, snapshot trees show theirs read-only (EROFS).
// Python's os.*xattr calls are the witness, on the mount and on the backing files.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect } from 'vitest';
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

describe.each(MOUNT_MODES)('extended attributes through the mount ($name)', ({ env }) => {
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

describe('extended attributes for another user through --allow-other', () => {
  const USER = 'jvs-other';
  const otherMissing = (() => {
    const f = fuse3Missing();
    if (f) return f;
    if (process.getuid?.() !== 0) return 'needs root (a root daemon with --allow-other, and useradd)';
    if (!fs.existsSync('/usr/bin/python3')) return '/usr/bin/python3 (the witness, run as the other user)';
    if (spawnSync('id', [USER], { stdio: 'ignore' }).status !== 0) {
      const r = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER], { encoding: 'utf8' });
      if (r.status !== 0) return `useradd ${USER} failed: ${r.stderr}`;
    }
    return undefined;
  })();

  /** Python xattr ops run as the other user: each result an object of attributes, or an errno name. */
  function asOther(ops: Array<[string, string, string?, string?]>, cwd: string): Array<Record<string, string> | string> {
    const script = `
import errno, json, os, sys
out = []
for verb, p, name, value in json.load(sys.stdin):
    try:
        if verb == 'set': os.setxattr(p, name, bytes.fromhex(value[4:]) if value.startswith('hex:') else value.encode(), follow_symlinks=False); out.append('ok')
        elif verb == 'del': os.removexattr(p, name, follow_symlinks=False); out.append('ok')
        elif verb == 'list': out.append(','.join(sorted(os.listxattr(p, follow_symlinks=False))))
        elif verb == 'get': out.append(os.getxattr(p, name, follow_symlinks=False).decode())
    except OSError as e:
        out.append(errno.errorcode[e.errno])
print(json.dumps(out))
`;
    const r = spawnSync('setpriv', ['--reuid', USER, '--regid', USER, '--init-groups', '/usr/bin/python3', '-c', script], { cwd, input: JSON.stringify(ops.map((o) => [o[0], o[1], o[2] ?? null, o[3] ?? null])), encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`python3 as ${USER} failed: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  itWith('FUSE allow_other and python3', otherMissing, 'another user may set user.* on their own file but never trusted.* or security.capability, and never sees trusted.*', () => {
    useMountEnv({ JVS_MOUNT_IMPL: 'll' });
    const m = mountNewRepo({ 'shared/.keep': '', 'shared/marked.txt': 'm\n' }, ['--allow-other', '--xattrs']);
    const top = path.dirname(m.root);
    fs.chmodSync(top, 0o711);
    fs.chmodSync(m.root, 0o755);
    fs.chmodSync(m.main, 0o755);
    fs.chmodSync(path.join(m.main, 'shared'), 0o1777);
    fs.chmodSync(path.join(m.main, 'shared/marked.txt'), 0o644);
    py([['set', `${m.main}/shared/marked.txt`, 'trusted.secret', 's'], ['set', `${m.main}/shared/marked.txt`, 'user.open', 'o']]);
    const cur = 'current/shared';
    fs.writeFileSync(path.join(m.mnt, cur, '.probe'), ''); // the mount is up and writable
    const out = asOther(
      [
        ['list', `${cur}/marked.txt`],
        ['get', `${cur}/marked.txt`, 'trusted.secret'],
        ['get', `${cur}/marked.txt`, 'user.open'],
      ],
      m.mnt,
    );
    expect(out).toEqual(['user.open', 'ENODATA', 'o']);
    // Their own file: user.* yes; trusted.* and a file capability no.
    const mine = asOther([['set', `${cur}/mine.txt`, 'user.x', '1']], m.mnt); // ENOENT: not made yet
    expect(mine).toEqual(['ENOENT']);
    spawnSync('setpriv', ['--reuid', USER, '--regid', USER, '--init-groups', 'touch', `${cur}/mine.txt`], { cwd: m.mnt });
    const caps = asOther(
      [
        ['set', `${cur}/mine.txt`, 'user.x', '1'],
        ['set', `${cur}/mine.txt`, 'trusted.x', '1'],
        // A valid file capability (revision 2, effective, CAP_SYS_ADMIN permitted): root could set it.
        ['set', `${cur}/mine.txt`, 'security.capability', 'hex:0100000200002000000000000000000000000000'],
        ['del', `${cur}/marked.txt`, 'trusted.secret'],
      ],
      m.mnt,
    );
    expect(caps).toEqual(['ok', 'EPERM', 'EPERM', 'EPERM']);
    expect(py([['get', `${m.main}/shared/mine.txt`], ['get', `${m.main}/shared/marked.txt`]])).toEqual([{ 'user.x': '1' }, { 'trusted.secret': 's', 'user.open': 'o' }]);
  });
});

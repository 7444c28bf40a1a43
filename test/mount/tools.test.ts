// Real FUSE mounts driven by ordinary tools: diff, tar, rsync, git, SQLite, bash and
// Python writing control files. Root, /dev/fuse and the libfuse 3 mount are needed; CI turns a
// missing prerequisite into a failure (itWith).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect } from 'vitest';
import { JVS_BIN, jvsOk } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';
import { itWith } from '../helpers/prereq.js';
import { fuseMissing, MOUNT_MODES, mountAgain, mountNewRepo, mountpoint, sh, shOk, snapshotIds, useMountEnv } from './mountHelpers.js';

const MISSING = fuseMissing();
const it = (name: string, fn: () => unknown | Promise<unknown>) => itWith('FUSE', MISSING, name, fn, 180_000);

// Every transport and loop of the libfuse 3 mount ships: run everything on each.
describe.each(MOUNT_MODES)('jvs mount with real tools ($name)', ({ env }) => {
  beforeAll(() => useMountEnv(env));

  it('diff -r between two snapshot folders shows exactly the change', () => {
    const m = mountNewRepo({ 'keep.txt': 'same\n', 'edit.txt': 'old line\n', 'gone.txt': 'bye\n', 'dir/deep.txt': 'deep\n' });
    shOk('echo "first" > .jvs/ctl/snapshot', m.mnt);
    shOk('echo "new line" > current/edit.txt && rm current/gone.txt && echo hi > current/dir/added.txt', m.mnt);
    shOk('echo "second" > .jvs/ctl/snapshot', m.mnt);
    const [a, b] = snapshotIds(m.mnt);
    const through = sh(`diff -r .jvs/snapshots/${a} .jvs/snapshots/${b}`, m.mnt);
    expect(through.code).toBe(1);
    const backing = sh(`diff -r -x .READY ${a} ${b}`, path.join(m.root, '.jvs/snapshots'));
    expect(through.stdout.replaceAll('.jvs/snapshots/', '')).toBe(backing.stdout.replaceAll(' -x .READY', ''));
    expect(through.stdout).toContain('< old line');
    expect(through.stdout).toContain('> new line');
    expect(through.stdout).toContain(`Only in .jvs/snapshots/${a}: gone.txt`);
    expect(through.stdout).toContain(`Only in .jvs/snapshots/${b}/dir: added.txt`);
    expect(through.stdout).not.toContain('keep.txt');
    // HEAD and tags are links to the id folders.
    expect(fs.readlinkSync(path.join(m.mnt, '.jvs/snapshots/HEAD'))).toBe(b);
    expect(sh('diff -r .jvs/snapshots/HEAD current', m.mnt).code).toBe(0);
  });

  it("tar c of a snapshot folder equals tar c of the snapshot's payload", () => {
    const m = mountNewRepo({ 'a.txt': 'alpha\n', 'bin/tool.sh': '#!/bin/sh\necho hi\n', 'nested/x/y/z.dat': 'z'.repeat(100_000) });
    shOk('chmod 755 current/bin/tool.sh && ln -s ../a.txt current/nested/link && ln current/a.txt current/hard-a && touch -d "2020-05-06 07:08:09.123456789" current/a.txt', m.mnt);
    shOk('printf "tarred" > .jvs/ctl/snapshot', m.mnt);
    const [id] = snapshotIds(m.mnt);
    // The mount strips write bits from snapshot trees by design: compare with them removed.
    const tar = '--sort=name --mode=a-w --numeric-owner --format=posix --pax-option=delete=atime,delete=ctime';
    const viaMount = shOk(`tar c ${tar} -C .jvs/snapshots/${id} . | sha256sum`, m.mnt);
    const payload = shOk(`tar c ${tar} --exclude=./.READY -C ${id} . | sha256sum`, path.join(m.root, '.jvs/snapshots'));
    expect(viaMount).toBe(payload);
    // The hard link inside the snapshot is a link in the archive, through the mount too.
    expect(shOk(`tar tv -C .jvs/snapshots/${id} -f <(tar c -C .jvs/snapshots/${id} .)`, m.mnt)).toMatch(/link to \.\/a\.txt|link to \.\/hard-a/);
  });

  it('rsync -a current/ elsewhere/ copies content, modes and mtimes', () => {
    const m = mountNewRepo({ 'r/a.txt': 'a\n', 'r/b/c.bin': 'c'.repeat(300_000) });
    shOk('touch -d "2019-01-02 03:04:05" current/r/a.txt && chmod 640 current/r/a.txt', m.mnt);
    const out = mountpoint();
    shOk(`rsync -a current/ ${out}/`, m.mnt);
    expect(sh(`diff -r ${m.main} ${out}`, m.mnt).code).toBe(0);
    const st = fs.statSync(path.join(out, 'r/a.txt'));
    expect(st.mtime.toISOString()).toBe('2019-01-02T03:04:05.000Z');
    expect(st.mode & 0o777).toBe(0o640);
  });

  it('touch -d, touch -m, cp -p, tar x and rsync -t keep mtimes through the mount', () => {
    const m = mountNewRepo({});
    const src = mountpoint();
    fs.mkdirSync(path.join(src, 'tree/sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'tree/sub/f.txt'), 'f\n');
    fs.writeFileSync(path.join(src, 'plain.txt'), 'p\n');
    shOk(`touch -d "2011-11-11 11:11:11.111111111" ${src}/tree/sub/f.txt ${src}/plain.txt && tar cf ${src}/t.tar --format=posix -C ${src} tree`, m.mnt);
    const mtime = (rel: string) => fs.statSync(path.join(m.main, rel), { bigint: true }).mtimeNs;
    const want = fs.statSync(path.join(src, 'plain.txt'), { bigint: true }).mtimeNs;

    shOk('echo x > current/t1 && touch -d "2001-02-03 04:05:06.789" current/t1', m.mnt);
    expect(mtime('t1')).toBe(981_173_106_789_000_000n);
    // touch -m changes mtime only (a one-sided update libfuse 2 used to drop).
    shOk('touch -a -d "2005-05-05 05:05:05" current/t1 && touch -m -d "2002-02-02 02:02:02" current/t1', m.mnt);
    expect(mtime('t1')).toBe(1_012_615_322_000_000_000n);
    expect(fs.statSync(path.join(m.main, 't1'), { bigint: true }).atimeNs).toBe(1_115_269_505_000_000_000n);
    shOk(`cp -p ${src}/plain.txt current/copied.txt`, m.mnt);
    expect(mtime('copied.txt')).toBe(want);
    shOk(`tar xf ${src}/t.tar -C current`, m.mnt);
    expect(mtime('tree/sub/f.txt')).toBe(want); // pax headers carry nanoseconds
    shOk(`rsync -t ${src}/plain.txt current/rsynced.txt`, m.mnt);
    expect(mtime('rsynced.txt') / 1_000_000_000n).toBe(want / 1_000_000_000n);
    // What the mount reports agrees with the backing file.
    expect(fs.statSync(path.join(m.mnt, 'current/copied.txt'), { bigint: true }).mtimeNs).toBe(want);
  });

  it('current/ does what editors and build tools do: rename over, links, chmod, truncate, fsync, statfs', () => {
    const m = mountNewRepo({ 'doc.txt': 'v1\n' });
    const cur = path.join(m.mnt, 'current');
    const py = `
import os
fd = os.open('doc.txt.swp', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b'v2\\n'); os.fsync(fd); os.close(fd)
os.rename('doc.txt.swp', 'doc.txt')
os.link('doc.txt', 'doc-hard.txt')
os.symlink('doc.txt', 'doc-link')
os.chmod('doc.txt', 0o640)
with open('big.log', 'wb') as f: f.write(b'x' * 100000)
os.truncate('big.log', 10)
a, b = os.stat('doc.txt'), os.stat('doc-hard.txt')
print(a.st_ino == b.st_ino, a.st_nlink, oct(a.st_mode & 0o777), os.readlink('doc-link'), os.path.getsize('big.log'), os.statvfs('.').f_bsize > 0)
`;
    expect(shOk(`python3 -c '${py.replaceAll("'", "'\\''")}'`, cur).trim()).toBe('True 2 0o640 doc.txt 10 True');
    expect(fs.readFileSync(path.join(m.main, 'doc.txt'), 'utf8')).toBe('v2\n');
    expect(fs.statSync(path.join(m.main, 'doc.txt')).ino).toBe(fs.statSync(path.join(m.main, 'doc-hard.txt')).ino);
    expect(fs.readlinkSync(path.join(m.main, 'doc-link'))).toBe('doc.txt');
    expect(fs.readdirSync(m.main).sort()).toEqual(['big.log', 'doc-hard.txt', 'doc-link', 'doc.txt']);
    expect(shOk('df -P current | tail -1', m.mnt)).toMatch(/^jvs /);
  });

  it("files made through the mount get the caller's umask, not the daemon's", () => {
    const m = mountNewRepo({ 'f.txt': 'x\n' });
    // The daemon runs with umask 0; with the usual 022 these would lose group write.
    shOk('umask 002 && touch current/group-writable && mkdir current/gdir', m.mnt);
    expect(fs.statSync(path.join(m.main, 'group-writable')).mode & 0o777).toBe(0o664);
    expect(fs.statSync(path.join(m.main, 'gdir')).mode & 0o777).toBe(0o775);
  });

  it('git init, add and commit work inside current/', () => {
    const m = mountNewRepo({ 'src/main.c': 'int main(){return 0;}\n', 'README': 'readme\n' });
    const cur = path.join(m.mnt, 'current');
    shOk('git init -q && git add -A && git -c user.name=t -c user.email=t@e commit -qm "first commit" && git status --porcelain && git fsck --no-progress', cur);
    expect(shOk('git status --porcelain', cur)).toBe('');
    shOk('echo "with git" > ../.jvs/ctl/snapshot', cur);
    expect(shOk('git --git-dir=.jvs/snapshots/HEAD/.git log --format=%s', m.mnt).trim()).toBe('first commit');
  });

  it('a SQLite database written inside current/ is intact, also in its snapshot', () => {
    const m = mountNewRepo({});
    const py = `
import sqlite3
db = sqlite3.connect('current/data.db')
db.execute('create table t (k integer primary key, v text)')
for i in range(20):
    with db:
        db.executemany('insert into t (v) values (?)', [('row %d' % (i * 100 + j),) for j in range(100)])
db.execute('update t set v = v || "!" where k % 7 = 0'); db.commit()
assert db.execute('pragma integrity_check').fetchone()[0] == 'ok'
db.close()
open('.jvs/ctl/snapshot', 'w').write('with sqlite')
snap = sqlite3.connect('file:.jvs/snapshots/HEAD/data.db?mode=ro&immutable=1', uri=True)
print(snap.execute('select count(*) from t').fetchone()[0], snap.execute('pragma integrity_check').fetchone()[0])
`;
    expect(shOk(`python3 -c '${py.replaceAll("'", "'\\''")}'`, m.mnt).trim()).toBe('2000 ok');
    expect(fs.existsSync(path.join(m.main, 'data.db-journal'))).toBe(false);
  });

  it('echo "msg" > .jvs/ctl/snapshot from bash and a write from Python both create a snapshot', () => {
    const m = mountNewRepo({ 'f.txt': 'v1\n' });
    const r = sh('echo "from bash" > .jvs/ctl/snapshot', m.mnt);
    expect(r.code).toBe(0);
    shOk('echo v2 > current/f.txt', m.mnt);
    shOk(`python3 -c 'open(".jvs/ctl/snapshot", "w").write("from python\\n")'`, m.mnt);
    const hist = jvsOk(['history', '--json'], { cwd: m.main }).json<{ snapshots: Array<{ note?: string }> }>();
    expect(hist.snapshots.map((s) => s.note)).toEqual(['from python', 'from bash']);
    const last = JSON.parse(fs.readFileSync(path.join(m.mnt, '.jvs/ctl/snapshot'), 'utf8'));
    expect(last).toMatchObject({ ok: true, note: 'from python' });
    expect(fs.readFileSync(path.join(m.mnt, '.jvs/snapshots/HEAD/f.txt'), 'utf8')).toBe('v2\n');
  });

  it('a refused request fails the write: bash exits non-zero, Python raises the errno', () => {
    const m = mountNewRepo({ 'f.txt': 'x\n' });
    const r = sh(`echo '{"note":"n","tags":["no/slash"]}' > .jvs/ctl/snapshot`, m.mnt);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Invalid argument');
    // `with` closes inside the script: the failed write raises there (at exit it would be ignored).
    const py = sh(`python3 -c 'with open(".jvs/ctl/restore", "w") as f: f.write("no-such-ref")'`, m.mnt);
    expect(py.code).not.toBe(0);
    expect(py.stderr).toMatch(/FileNotFoundError|No such file/);
    expect(JSON.parse(fs.readFileSync(path.join(m.mnt, '.jvs/ctl/restore'), 'utf8'))).toMatchObject({ ok: false, errno: 'ENOENT', error: { class: 'E_NOT_FOUND' } });
    expect(snapshotIds(m.mnt)).toEqual([]);
  });

  it('writes into snapshot folders fail with "Read-only file system"', () => {
    const m = mountNewRepo({ 'f.txt': 'x\n', 'd/g.txt': 'g\n' });
    shOk('echo snap > .jvs/ctl/snapshot', m.mnt);
    const [id] = snapshotIds(m.mnt);
    for (const cmd of [`echo x > .jvs/snapshots/${id}/new`, `echo x >> .jvs/snapshots/${id}/f.txt`, `rm .jvs/snapshots/${id}/f.txt`, `mkdir .jvs/snapshots/${id}/nd`,
      `touch .jvs/snapshots/${id}/f.txt`, `chmod 777 .jvs/snapshots/${id}/f.txt`, `mv .jvs/snapshots/${id}/d/g.txt .jvs/snapshots/${id}/h.txt`, `echo y > .jvs/snapshots/HEAD/d/g.txt`]) {
      const r = sh(cmd, m.mnt);
      expect(r.code, cmd).not.toBe(0);
      expect(r.stderr, cmd).toContain('Read-only file system');
    }
    expect(fs.readFileSync(path.join(m.root, '.jvs/snapshots', id!, 'f.txt'), 'utf8')).toBe('x\n');
  });

  it('shows symlinks in snapshots as links and never follows them in the daemon', () => {
    const m = mountNewRepo({ 'f.txt': 'x\n' });
    fs.symlinkSync('/etc/hostname', path.join(m.main, 'out'));
    shOk('echo links > .jvs/ctl/snapshot', m.mnt);
    const link = path.join(m.mnt, '.jvs/snapshots/HEAD/out');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(link)).toBe('/etc/hostname');
  });

  // The low-level session keeps a file unlinked while open by its fd and unlinks the name
  // at once (libfuse 2's high-level API renamed it to .fuse_hidden* instead).
  it('a file unlinked while open leaves no name in current/ and stays out of control-file snapshots', () => {
    const m = mountNewRepo({ 'keep.txt': 'k\n' });
    const py = `
import os
f = open('current/tmp.bin', 'w'); f.write('scratch'); f.flush()
os.unlink('current/tmp.bin')
print(sorted(os.listdir('current')))
open('.jvs/ctl/snapshot', 'w').write('while open')
print(sorted(os.listdir('.jvs/snapshots/HEAD')))
f.close()
`;
    expect(shOk(`python3 -c '${py.replaceAll("'", "'\\''")}'`, m.mnt).trim().split('\n')).toEqual(["['keep.txt']", "['keep.txt']"]);
  });

  it('kill -9 of the daemon, then a new jvs mount on the same mountpoint works', () => {
    const m = mountNewRepo({ 'f.txt': 'alive\n' });
    process.kill(m.pid, 'SIGKILL');
    // kill(2) only sends the signal: under load the daemon (and its live mount) can still
    // be there a moment later, and a mount over a live one is refused (E_ALREADY_EXISTS),
    // which made this test flaky. The claim is about a dead daemon's mount.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && isAlive(m.pid)) spawnSync('sleep', ['0.05']);
    expect(isAlive(m.pid)).toBe(false);
    mountAgain(m.main, m.mnt);
    expect(fs.readFileSync(path.join(m.mnt, 'current/f.txt'), 'utf8')).toBe('alive\n');
    shOk('echo "after crash" > .jvs/ctl/snapshot', m.mnt);
    expect(snapshotIds(m.mnt)).toHaveLength(1);
  });

  it('writes through the mount are held while a control-file snapshot materialises', () => {
    const m = mountNewRepo({ 'f.txt': 'x\n' });
    // The pre-snapshot hook runs inside the held section: it starts a writer through the
    // mount and lets the snapshot go on once the writer has sat in a FUSE request (the
    // kernel's request_wait_answer) for 0.3 s on end, 30 s at most; it says which in
    // hook.out. No fixed wait that a slower or faster machine could get wrong. Held, the
    // write lands after the snapshot.
    const hook = path.join(m.root, '.jvs/hooks/pre-snapshot');
    const out = path.join(m.root, 'hook.out');
    fs.mkdirSync(path.dirname(hook), { recursive: true });
    // (The writer must not keep the hook's stdout open: the snapshot waits for the hook.)
    fs.writeFileSync(
      hook,
      `#!/bin/sh
( echo late > '${m.mnt}/current/late.txt' ) </dev/null >/dev/null 2>&1 &
w=$!
i=0; n=0
while [ $i -lt 3000 ] && [ $n -lt 30 ]; do
  if [ "$(cat /proc/$w/wchan 2>/dev/null)" = request_wait_answer ]; then n=$((n+1)); else n=0; fi
  sleep 0.01; i=$((i+1))
done
if [ $n -ge 30 ]; then echo 'writer held' > '${out}'; else echo 'the writer never waited in the mount' > '${out}'; fi
exit 0
`,
      { mode: 0o755 },
    );
    shOk('echo "cut" > .jvs/ctl/snapshot', m.mnt);
    expect(fs.readFileSync(out, 'utf8')).toBe('writer held\n');
    const [id] = snapshotIds(m.mnt);
    expect(fs.readdirSync(path.join(m.root, '.jvs/snapshots', id!)).sort()).toEqual(['.READY', 'f.txt']);
    const deadline = Date.now() + 10_000;
    const late = () => (fs.existsSync(path.join(m.main, 'late.txt')) ? fs.readFileSync(path.join(m.main, 'late.txt'), 'utf8') : '');
    while (late() !== 'late\n' && Date.now() < deadline) spawnSync('sleep', ['0.05']);
    expect(late()).toBe('late\n');
  });

  it('jvs umount unmounts and the daemon exits', async () => {
    const m = mountNewRepo({ 'f.txt': 'x\n' });
    jvsOk(['umount', m.mnt], { cwd: m.main });
    expect(fs.readdirSync(m.mnt)).toEqual([]);
    const deadline = Date.now() + 10_000;
    let alive = true;
    while (alive && Date.now() < deadline) {
      try {
        process.kill(m.pid, 0);
        await new Promise((r) => setTimeout(r, 100));
      } catch {
        alive = false;
      }
    }
    expect(alive).toBe(false);
  });
});

describe('jvs mount in the foreground', () => {
  itWith('FUSE', MISSING, 'unmounts cleanly and exits 0 on SIGTERM and on SIGINT', async () => {
    const dir = tmpDir();
    jvsOk(['init', 'repo'], { cwd: dir });
    const main = path.join(dir, 'repo/main');
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      const mnt = mountpoint();
      const child = spawn(process.execPath, [JVS_BIN, 'mount', mnt], { cwd: main, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      const deadline = Date.now() + 20_000;
      while (!fs.existsSync(path.join(mnt, 'current')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(fs.existsSync(path.join(mnt, 'current'))).toBe(true);
      child.kill(sig);
      expect(await exited).toBe(0);
      expect(out).toContain(`Unmounted ${mnt}`);
      expect(fs.readdirSync(mnt)).toEqual([]);
    }
  }, 60_000);
});

/** Whether process `pid` still exists (a zombie not yet reaped counts as gone: its fds are closed). */
function isAlive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

// The libfuse 3 low-level session (native/fuse/): the kernel's caches are invalidated
// when a restore changes current/ behind its back, the O_PATH fd cache stays bounded and
// re-resolves evicted inodes without ever following a symlink out of the tree.
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect } from 'vitest';
import { JVS_BIN } from '../helpers/cli.js';
import { itWith } from '../helpers/prereq.js';
import { fuse3Missing, MOUNT_MODES, mountNewRepo, sh, shOk, snapshotIds, uringMissing, useMountEnv } from './mountHelpers.js';

const MISSING = fuse3Missing();
const it = (name: string, fn: () => unknown | Promise<unknown>) => itWith('FUSE', MISSING, name, fn, 240_000);

describe.each(MOUNT_MODES)('libfuse 3 mount ($name)', ({ env }) => {
  beforeAll(() => useMountEnv(env));

  it('a write to a name a control-file restore just removed works at once: 100 of 100 agent iterations, no sleeps', () => {
    const m = mountNewRepo({ 'keep.txt': 'k\n' });
    shOk('echo base > .jvs/ctl/snapshot', m.mnt);
    // Each iteration: create f (the kernel caches its entry), restore HEAD (f is removed
    // behind the kernel's back), write f again at once and read it back.
    const script = `ok=0; for i in $(seq 100); do
  echo x > current/f && echo HEAD > .jvs/ctl/restore && echo y > current/f && [ "$(cat current/f)" = y ] && ok=$((ok+1))
done; echo $ok`;
    const r = sh(script, m.mnt);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('100');
  });

  it('after a restore, files the kernel had cached read the restored content and size at once', () => {
    const m = mountNewRepo({ 'g.txt': 'one\n' });
    shOk('cat current/g.txt >/dev/null && echo s1 > .jvs/ctl/snapshot', m.mnt);
    shOk('echo "two, longer" > current/g.txt && mkdir -p current/d && echo in > current/d/x && cat current/g.txt current/d/x >/dev/null', m.mnt);
    shOk('echo HEAD > .jvs/ctl/restore', m.mnt);
    expect(shOk('cat current/g.txt; stat -c %s current/g.txt; ls current', m.mnt)).toBe('one\n4\ng.txt\n');
  });

  it('a CLI `jvs restore` of the mounted worktree reaches the daemon: a removed name is writable at once', () => {
    const m = mountNewRepo({ 'keep.txt': 'k\n' });
    shOk('echo base > .jvs/ctl/snapshot', m.mnt);
    const script = `ok=0; for i in $(seq 20); do
  echo x > '${m.mnt}/current/f' && '${process.execPath}' '${JVS_BIN}' restore HEAD >/dev/null && echo y > '${m.mnt}/current/f' && ok=$((ok+1))
done; echo $ok`;
    const r = sh(script, m.main);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('20');
  });

  it('a CLI `jvs snapshot` sees a write still open through the mount (the daemon writes its cache back first)', () => {
    const m = mountNewRepo({ 'keep.txt': 'k\n' });
    const py = `
import os, subprocess, sys
f = open('${m.mnt}/current/open.txt', 'w'); f.write('written, not closed'); f.flush()
subprocess.run([sys.argv[1], sys.argv[2], 'snapshot', 'while open'], check=True, stdout=subprocess.DEVNULL)
f.close()
`;
    shOk(`python3 -c '${py.replaceAll("'", "'\\''")}' '${process.execPath}' '${JVS_BIN}'`, m.main);
    expect(shOk('cat .jvs/snapshots/HEAD/open.txt', m.mnt)).toBe('written, not closed');
  });

  it('keeps the O_PATH fd cache bounded and re-resolves evicted inodes by name', () => {
    useMountEnv({ ...env, JVS_MOUNT_MAX_FDS: '64' });
    try {
      const files: Record<string, string> = {};
      for (let d = 0; d < 20; d++) for (let f = 0; f < 30; f++) files[`d${d}/f${f}.txt`] = `${d}/${f}\n`;
      const m = mountNewRepo(files);
      const fdsBefore = fs.readdirSync(`/proc/${m.pid}/fd`).length;
      // 620 inodes looked up (and kept by the kernel's dentry cache) through a 64-fd cache.
      const listing = shOk('find current -type f | wc -l', m.mnt).trim();
      expect(listing).toBe('600');
      const fdsAfter = fs.readdirSync(`/proc/${m.pid}/fd`).length;
      // 64 cached O_PATH fds, plus folders open for reading and whatever Node opened
      // meanwhile: far below one fd per inode (620).
      expect(fdsAfter - fdsBefore).toBeLessThanOrEqual(64 + 40);
      // Every evicted inode opens again: contents through cached entries are right.
      const cat = shOk('for d in $(seq 0 19); do for f in $(seq 0 29); do cat current/d$d/f$f.txt; done; done', m.mnt);
      expect(cat.split('\n').filter(Boolean)).toHaveLength(600);
      expect(cat).toContain('19/29\n');
      // A folder renamed through the mount keeps serving its (evicted) children.
      shOk('mv current/d3 current/moved && cat current/moved/f7.txt >/dev/null', m.mnt);
      for (let d = 0; d < 20; d++) if (d !== 3) shOk(`stat current/d${d}/f0.txt >/dev/null`, m.mnt);
      expect(shOk('cat current/moved/f29.txt', m.mnt)).toBe('3/29\n');
    } finally {
      useMountEnv(env);
    }
  });

  it('never follows a folder swapped for a symlink behind the mount, cached or evicted', () => {
    useMountEnv({ ...env, JVS_MOUNT_MAX_FDS: '64' });
    try {
      const m = mountNewRepo({ 'd/inside.txt': 'in\n' });
      // The link is relative: from the backing folder it reaches `outside`; followed by
      // the kernel on the caller's side (current/d -> ../../name next to the mountpoint)
      // it reaches nothing. So a secret read can only come from the daemon following it.
      const name = `outside-${path.basename(m.root)}-${process.pid}`;
      const outside = path.join(path.dirname(m.root), name);
      expect(fs.existsSync(path.join(path.dirname(m.mnt), name))).toBe(false);
      fs.mkdirSync(outside);
      fs.writeFileSync(path.join(outside, 'secret.txt'), 'secret\n');
      shOk('cat current/d/inside.txt >/dev/null', m.mnt); // the kernel now holds d
      fs.renameSync(path.join(m.main, 'd'), path.join(m.main, 'd.old'));
      fs.symlinkSync(`../../${name}`, path.join(m.main, 'd'));
      const cached = sh('cat current/d/secret.txt', m.mnt);
      expect(cached.code).not.toBe(0);
      expect(cached.stdout).not.toContain('secret');
      // Evict d's fd (touch many other inodes), then try again: re-resolution refuses the link.
      shOk('for i in $(seq 200); do echo $i > current/n$i; done; cat current/n* >/dev/null', m.mnt);
      const evicted = sh('cat current/d/secret.txt; echo new > current/d/planted.txt', m.mnt);
      expect(evicted.stdout).not.toContain('secret');
      expect(fs.readdirSync(outside)).toEqual(['secret.txt']);
    } finally {
      useMountEnv(env);
    }
  });
});

describe('FUSE over io_uring (libfuse 3.18 ring threads)', () => {
  const URING = uringMissing();
  const itU = (name: string, fn: () => unknown | Promise<unknown>) => itWith('FUSE over io_uring', URING, name, fn, 240_000);
  /**
   * A mount (default transport) whose pre-snapshot hook holds the gate of a control-file
   * snapshot until the test's processes have done what must happen during the cut: it
   * writes `held` into the repository root as it starts (the gate is held from then on),
   * runs `wait` (Python that sets `result`) and writes `result` to `hook.out`. No fixed
   * sleeps: the processes wait for `held`, the hook for them (30 s at most), so a slower
   * or faster machine changes nothing.
   */
  const mountWithHook = (files: Record<string, string>, wait: string) => {
    useMountEnv({ JVS_MOUNT_IMPL: 'll' });
    const m = mountNewRepo(files);
    const hook = path.join(m.root, '.jvs/hooks/pre-snapshot');
    fs.mkdirSync(path.dirname(hook), { recursive: true });
    const body = `#!/usr/bin/env python3
import os, time
root = ${JSON.stringify(m.root)}
at = lambda name: os.path.join(root, name)
open(at('held'), 'w').close()
${wait}
open(at('hook.out'), 'w').write(result)
`;
    fs.writeFileSync(hook, body, { mode: 0o755 });
    const at = (name: string) => path.join(m.root, name);
    return { m, hook, at };
  };
  /** Python for the test's processes: wait (30 s at most) for the hook to hold the gate. */
  const waitHeld = (root: string) => `deadline = time.time() + 30
while not os.path.exists(${JSON.stringify(path.join(root, 'held'))}):
    if time.time() > deadline: sys.exit('the pre-snapshot hook never started')
    time.sleep(0.01)`;
  const transport = (mnt: string) => JSON.parse(shOk('cat .jvs/ctl/status', mnt)).transport as { io_uring: boolean; changes_over_io_uring: number; changes_deferred: number };

  itU('serves current/ over io_uring by default, and over /dev/fuse with JVS_MOUNT_URING=0', () => {
    useMountEnv({ JVS_MOUNT_IMPL: 'll' });
    const m = mountNewRepo({ 'keep.txt': 'k\n' });
    shOk('for i in $(seq 20); do echo $i > current/f$i; done', m.mnt);
    const t = transport(m.mnt);
    expect(t.io_uring).toBe(true);
    expect(t.changes_over_io_uring).toBeGreaterThanOrEqual(20);
    useMountEnv({ JVS_MOUNT_IMPL: 'll', JVS_MOUNT_URING: '0' });
    const d = mountNewRepo({ 'keep.txt': 'k\n' });
    shOk('for i in $(seq 20); do echo $i > current/f$i; done', d.mnt);
    expect(transport(d.mnt)).toMatchObject({ io_uring: false, changes_over_io_uring: 0 });
  });

  // A ring thread serves its queue's requests holding the queue's lock, which replies
  // from the JS thread take too: a change waiting there for the gate a control-file
  // snapshot holds could stop the JS thread at its next reply to that queue, and the
  // snapshot (and the gate) with it. Here the pre-snapshot hook keeps the gate held while
  // changes arrive from both CPUs (through folder fds taken before, so no lookup of
  // current/ waits for the busy JS thread) beside requests for virtual files. Each
  // writer creates in its own folder (creates in one folder queue on its lock in the
  // kernel, so only one would reach the mount). The hook lets the snapshot go on only
  // once both writers have sat in a FUSE request (the kernel's request_wait_answer) for
  // 0.3 s on end: their creates reached the mount during the cut and are held there.
  itU('changes arriving over io_uring while a control-file snapshot holds the gate wait in the pool, stay out of the snapshot and land after it', () => {
    const { m, hook, at } = mountWithHook({ 'keep.txt': 'k\n', 'd0/k': '0', 'd1/k': '1' }, `pids = [open(at('ready-%d' % cpu)).read() for cpu in (0, 1)]
def in_fuse(pid):
    try:
        return open('/proc/%s/wchan' % pid).read() == 'request_wait_answer'
    except OSError:
        return False
deadline, since, result = time.time() + 30, None, 'the writers never both waited in the mount'
while time.time() < deadline:
    if all(in_fuse(p) for p in pids):
        since = since or time.time()
        if time.time() - since >= 0.3:
            result = 'writers held'
            break
    else:
        since = None
    time.sleep(0.01)`);
    const late = `import os, sys, time
fd = os.open('current/d' + sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
ready = ${JSON.stringify(at('ready-'))} + sys.argv[1]
open(ready + '.tmp', 'w').write(str(os.getpid()))
os.rename(ready + '.tmp', ready)
${waitHeld(m.root)}
for i in range(3):
    f = os.open('late-%s-%d' % (sys.argv[1], i), os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
    os.write(f, b'late'); os.close(f)`;
    fs.writeFileSync(at('late.py'), late);
    // The writers open their folders first; the snapshot starts once both have; they
    // write once the hook holds the gate, and the virtual files are read meanwhile.
    const script = `set -e
pids=""
for cpu in 0 1; do
  taskset -c $cpu python3 '${at('late.py')}' $cpu & pids="$pids $!"
done
until [ -e '${at('ready-0')}' ] && [ -e '${at('ready-1')}' ]; do sleep 0.01; done
echo cut > .jvs/ctl/snapshot & snap=$!
until [ -e '${at('held')}' ]; do sleep 0.01; done
for cpu in 0 1; do
  taskset -c $cpu cat .jvs/ctl/status > /dev/null & pids="$pids $!"
  taskset -c $cpu ls .jvs/snapshots > /dev/null & pids="$pids $!"
done
for p in $pids; do wait $p; done
wait $snap
echo done`;
    const r = sh(`timeout 90 bash -c '${script.replaceAll("'", "'\\''")}'`, m.mnt);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('done');
    expect(fs.readFileSync(at('hook.out'), 'utf8')).toBe('writers held');
    fs.rmSync(hook);
    const t = transport(m.mnt);
    expect(t.changes_deferred).toBeGreaterThanOrEqual(2);
    // The changes that waited are not in the snapshot, and they are in current/.
    expect(shOk('cd .jvs/snapshots/HEAD && find . | sort', m.mnt).trim().split('\n')).toEqual(['.', './d0', './d0/k', './d1', './d1/k', './keep.txt']);
    expect(shOk('ls current/d0 current/d1 | grep -c late-', m.mnt).trim()).toBe('6');
    expect(shOk('cat current/d1/late-1-2', m.mnt)).toBe('late');
  });

  // The ring thread hands every request of a kind that may change something (open,
  // say) to the pool while the gate is held; there the op waits for the gate only where
  // it changes something, so a read-only open goes on during the cut. The hook holds the
  // gate until the reader has read (it writes `released` after), 30 s at most: were the
  // open held by the gate, the hook would give up waiting and say so.
  itU('a read-only open over io_uring is served while a control-file snapshot holds the gate', () => {
    const { m, at } = mountWithHook({ 'keep.txt': 'kept\n' }, `deadline, result = time.time() + 30, 'gave up waiting for the read'
while time.time() < deadline:
    if os.path.exists(at('released')):
        result = 'released after the read'
        break
    time.sleep(0.01)`);
    const reader = `import os, sys, time
fd = os.open('current', os.O_RDONLY | os.O_DIRECTORY)
open(${JSON.stringify(at('ready'))}, 'w').close()
${waitHeld(m.root)}
f = os.open('keep.txt', os.O_RDONLY, dir_fd=fd)
data = os.read(f, 100); os.close(f)
open(${JSON.stringify(at('read.out'))}, 'w').write(data.decode().strip())
open(${JSON.stringify(at('released'))}, 'w').close()`;
    fs.writeFileSync(at('reader.py'), reader);
    const script = `python3 '${at('reader.py')}' & r=$!
until [ -e '${at('ready')}' ]; do sleep 0.01; done
echo cut > .jvs/ctl/snapshot
wait $r`;
    const r = sh(`timeout 90 bash -c '${script.replaceAll("'", "'\\''")}'`, m.mnt);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(fs.readFileSync(at('read.out'), 'utf8')).toBe('kept');
    // The read was served while the hook (and so the cut) still held the gate.
    expect(fs.readFileSync(at('hook.out'), 'utf8')).toBe('released after the read');
    expect(snapshotIds(m.mnt)).toHaveLength(1);
  });
});

// The libfuse 3 low-level session (native/fuse/): the kernel's caches are invalidated
// when a restore changes current/ behind its back, the O_PATH fd cache stays bounded and
// re-resolves evicted inodes without ever following a symlink out of the tree.
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect } from 'vitest';
import { JVS_BIN } from '../helpers/cli.js';
import { itWith } from '../helpers/prereq.js';
import { fuse3Missing, MOUNT_MODES, mountNewRepo, sh, shOk, uringMissing, useMountEnv } from './mountHelpers.js';

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
  /** A mount (default transport) whose pre-snapshot hook sleeps: a control-file snapshot holds the gate that long. */
  const mountWithSlowHook = (keep: string, seconds: number) => {
    useMountEnv({ JVS_MOUNT_IMPL: 'll' });
    const m = mountNewRepo({ 'keep.txt': keep });
    const hook = path.join(m.root, '.jvs/hooks/pre-snapshot');
    fs.mkdirSync(path.dirname(hook), { recursive: true });
    fs.writeFileSync(hook, `#!/bin/sh\nsleep ${seconds}\n`, { mode: 0o755 });
    return { m, hook };
  };
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
  // current/ waits for the busy JS thread) beside requests for virtual files.
  itU('changes arriving over io_uring while a control-file snapshot holds the gate wait in the pool, stay out of the snapshot and land after it', () => {
    const { m, hook } = mountWithSlowHook('k\n', 1);
    const late = `import os, sys, time
fd = os.open('current', os.O_RDONLY | os.O_DIRECTORY)
time.sleep(0.8)
for i in range(3):
    f = os.open('late-%s-%d' % (sys.argv[1], i), os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
    os.write(f, b'late'); os.close(f)`;
    fs.writeFileSync(path.join(m.root, 'late.py'), late);
    // The writers open current/ first, the snapshot starts 0.3 s later, they write at 0.8 s.
    const script = `set -e
pids=""
for cpu in 0 1; do
  taskset -c $cpu python3 '${path.join(m.root, 'late.py')}' $cpu & pids="$pids $!"
done
sleep 0.3
echo cut > .jvs/ctl/snapshot & snap=$!
sleep 0.2
for cpu in 0 1; do
  taskset -c $cpu cat .jvs/ctl/status > /dev/null & pids="$pids $!"
  taskset -c $cpu ls .jvs/snapshots > /dev/null & pids="$pids $!"
done
for p in $pids; do wait $p; done
wait $snap
echo done`;
    const r = sh(`timeout 60 bash -c '${script.replaceAll("'", "'\\''")}'`, m.mnt);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('done');
    fs.rmSync(hook);
    const t = transport(m.mnt);
    expect(t.changes_deferred).toBeGreaterThan(0);
    // The changes that waited are not in the snapshot, and they are in current/.
    expect(shOk('ls .jvs/snapshots/HEAD', m.mnt).trim()).toBe('keep.txt');
    expect(shOk('ls current | grep -c late-', m.mnt).trim()).toBe('6');
    expect(shOk('cat current/late-1-2', m.mnt)).toBe('late');
  });

  // The ring thread hands every request of a kind that may change something (open,
  // say) to the pool while the gate is held; there the op waits for the gate only where
  // it changes something, so a read-only open goes on during the cut.
  itU('a read-only open over io_uring is served while a control-file snapshot holds the gate', () => {
    const { m } = mountWithSlowHook('kept\n', 1.5);
    const reader = `import os, sys, time
fd = os.open('current', os.O_RDONLY | os.O_DIRECTORY)
time.sleep(0.8)
f = os.open('keep.txt', os.O_RDONLY, dir_fd=fd)
data = os.read(f, 100); os.close(f)
print('%.3f %s' % (time.time(), data.decode().strip()))`;
    fs.writeFileSync(path.join(m.root, 'reader.py'), reader);
    const script = `python3 '${path.join(m.root, 'reader.py')}' > '${path.join(m.root, 'read.out')}' & r=$!
sleep 0.3
echo cut > .jvs/ctl/snapshot
date +%s.%N
wait $r`;
    const r = sh(`timeout 60 bash -c '${script.replaceAll("'", "'\\''")}'`, m.mnt);
    expect(r.stderr).toBe('');
    const snapDone = Number(r.stdout.trim());
    const [readAt, content] = fs.readFileSync(path.join(m.root, 'read.out'), 'utf8').trim().split(' ');
    expect(content).toBe('kept');
    // The read came at ~0.8 s, the snapshot ended after the hook's 1.5 s.
    expect(snapDone - Number(readAt)).toBeGreaterThan(0.5);
  });
});

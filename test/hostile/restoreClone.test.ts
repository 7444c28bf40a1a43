import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { jvsOk } from '../helpers/cli.js';
import { extentsShared, type LoopFs, loopFsMissing, mountLoopFs } from '../helpers/loopfs.js';
import { itWith } from '../helpers/prereq.js';
import { writeFiles } from '../helpers/tmp.js';
import { expectError, run, treeState } from '../integrity/support.js';

/*
 * Issue 14, item 5 where restore clones instead of copying (reflink-copy on XFS): a
 * clone of a snapshot file whose stat is still the manifest's is trusted unread (and
 * shares its extents); a file written to since publish is hashed and refused.
 */
describe('issue 14 item 5 on a reflink filesystem (XFS loop mount)', () => {
  const missing = loopFsMissing('xfs');
  let xfs: LoopFs | undefined;
  beforeAll(() => {
    if (!missing) xfs = mountLoopFs('xfs', 320);
  });
  afterAll(() => xfs?.unmount());

  itWith('XFS loop mount', missing, 'restore clones unchanged snapshot files unread, and refuses one written to since publish (E_PAYLOAD_HASH_MISMATCH) before the worktree changes', () => {
    const base = xfs!.mountpoint;
    jvsOk(['init', 'repo'], { cwd: base });
    const main = path.join(base, 'repo/main');
    const victim = path.join(base, 'victim');
    writeFiles(victim, { 'precious.txt': 'precious\n' });
    const victimBefore = treeState(victim);
    writeFiles(main, { 'big.bin': 'x'.repeat(1 << 20), 'a.txt': 'alpha\n' });
    const s1 = jvsOk(['snapshot', 'one', '--json'], { cwd: main }).json();
    expect(s1.engine).toBe('reflink-copy');
    writeFiles(main, { 'big.bin': 'changed', 'a.txt': 'changed\n' });
    jvsOk(['restore', s1.snapshot_id], { cwd: main });
    expect(fs.readFileSync(path.join(main, 'a.txt'), 'utf8')).toBe('alpha\n');
    expect(extentsShared(path.join(main, 'big.bin'))).toBe(true);

    const snapA = path.join(base, 'repo/.jvs/snapshots', s1.snapshot_id, 'a.txt');
    fs.chmodSync(snapA, 0o644);
    fs.appendFileSync(snapA, 'appended\n');
    writeFiles(main, { 'a.txt': 'worktree edit\n' });
    const before = treeState(main);
    expectError(run(['restore', s1.snapshot_id, '--json'], main), 'E_PAYLOAD_HASH_MISMATCH');
    expect(treeState(main)).toEqual(before);
    expectError(run(['worktree', 'fork', s1.snapshot_id, 'f', '--json'], main), 'E_PAYLOAD_HASH_MISMATCH');
    expect(fs.existsSync(path.join(base, 'repo/worktrees/f'))).toBe(false);
    expect(treeState(victim)).toEqual(victimBefore);
  });
});

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSyncTree, syncTree } from '../../src/fsutil/syncTree.js';
import { native } from '../../src/native/native.js';
import { itWith } from '../helpers/prereq.js';
import { tmpDir, writeFiles } from '../helpers/tmp.js';

/**
 * syncTree makes a finished tree durable; startSyncTree does the same flush on a
 * background thread (the addon's syncfsStart) so a snapshot can hash meanwhile. What a
 * test can see of a flush is that it runs to the end and reports failures.
 */
describe('syncTree', () => {
  const entries = [{ rel: 'a', type: 'dir' }, { rel: 'a/b.txt', type: 'file' }, { rel: 'c.txt', type: 'file' }];

  itWith('native addon', native()?.syncfsStart ? undefined : 'the addon with syncfsStart: run `npm run build:native`', 'the background flush is joined by wait(), and a second wait() is harmless', () => {
    const root = tmpDir();
    writeFiles(root, { 'a/b.txt': 'b', 'c.txt': 'c' });
    const flush = startSyncTree(root, entries);
    expect(() => flush.wait()).not.toThrow();
    expect(() => flush.wait()).not.toThrow();
  });

  it('a tree that is not there fails with ENOENT, in the background form too', () => {
    const gone = path.join(tmpDir(), 'never-made');
    expect(() => syncTree(gone, entries)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => startSyncTree(gone, entries).wait()).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { native } from '../native/native.js';
import { fsyncDir } from './atomic.js';
import { fsPath } from '../format/nameBytes.js';

/**
 * Make a freshly written tree durable. With the addon one syncfs(2) flushes the whole
 * filesystem (far cheaper than an fsync per file on large trees); without it every
 * file and folder is fsynced.
 */
export function syncTree(root: string, entries: ReadonlyArray<{ rel: string; type: string }>): void {
  startSyncTree(root, entries).wait();
}

/**
 * syncTree with the flush running in the background when the addon is there: wait()
 * returns once the tree is durable (and throws what the flush hit). The caller may
 * compute meanwhile but must not write into the tree.
 */
export function startSyncTree(root: string, entries: ReadonlyArray<{ rel: string; type: string }>): { wait(): void } {
  const n = native();
  if (n?.syncfsStart) {
    const handle = n.syncfsStart(root);
    return { wait: () => n.syncfsWait!(handle) };
  }
  if (n) {
    n.syncfs(root);
    return { wait() {} };
  }
  for (const e of entries) {
    if (e.type === 'symlink') continue;
    const p = path.join(root, e.rel);
    if (e.type === 'dir') fsyncDir(p);
    else {
      const fd = fs.openSync(fsPath(p), 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
  }
  fsyncDir(root);
  return { wait() {} };
}

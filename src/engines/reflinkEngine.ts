import fs from 'node:fs';
import { JvsError } from '../errors.js';
import { hashFile } from '../fsutil/fileHash.js';
import type { Engine } from './engine.js';
import { fsPath } from '../format/nameBytes.js';

/** Errors of a clone that are about the file, not about the filesystem's ability to clone. */
const FILE_ERRORS = new Set(['ENOENT', 'EEXIST', 'ENOSPC']);

/**
 * What a failed FICLONE means for `reflink-copy`: file errors pass through; anything
 * else says this filesystem cannot clone (shared with the batched native path in
 * parallelCopy.ts, so both report the same error).
 */
export function cloneFailure(src: string, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code !== undefined && FILE_ERRORS.has(code)) return e;
  return new JvsError('E_ENGINE_UNAVAILABLE', `reflink clone of ${src} failed (${code ?? String(e)})`, {
    hint: 'this filesystem cannot clone files; unset JVS_SNAPSHOT_ENGINE or set it to `copy`',
    cause: e,
  });
}

/** `reflink-copy`: every file is a FICLONE of its source; a refused clone is an error. */
export class ReflinkEngine implements Engine {
  readonly name = 'reflink-copy' as const;

  copyFile(src: string, dst: string, mode: number, hash: true): string;
  copyFile(src: string, dst: string, mode: number, hash: boolean): string | undefined;
  copyFile(src: string, dst: string, _mode: number, hash: boolean): string | undefined {
    try {
      fs.copyFileSync(fsPath(src), fsPath(dst), fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE_FORCE);
    } catch (e) {
      throw cloneFailure(src, e);
    }
    // Hash the clone: what the snapshot holds even if the source is written to meanwhile.
    return hash ? hashFile(dst) : undefined;
  }
}

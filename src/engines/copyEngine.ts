import fs from 'node:fs';
import { copyAndHash, hashFile, nativeHashMany } from '../fsutil/fileHash.js';
import type { Engine } from './engine.js';
import { fsPath } from '../format/nameBytes.js';

/**
 * `copy`: tries FICLONE first (free on XFS/btrfs even when the engine was chosen by
 * name), else copies while hashing in one read. Once a clone has failed for this
 * process it is not tried again.
 */
export class CopyEngine implements Engine {
  readonly name = 'copy' as const;
  private cloneWorks: boolean | undefined;

  /** Whether FICLONE worked here (undefined: not tried yet). */
  get clonesFiles(): boolean | undefined {
    return this.cloneWorks;
  }

  /** What a copy made elsewhere (the native batch in parallelCopy.ts) learnt about FICLONE here. */
  noteClone(works: boolean): void {
    this.cloneWorks = works;
  }

  copyFile(src: string, dst: string, mode: number, hash: true): string;
  copyFile(src: string, dst: string, mode: number, hash: boolean): string | undefined;
  copyFile(src: string, dst: string, mode: number, hash: boolean): string | undefined {
    if (this.cloneWorks !== false) {
      try {
        fs.copyFileSync(fsPath(src), fsPath(dst), fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE_FORCE);
        this.cloneWorks = true;
        // Hash the clone, not the source: it is what the snapshot holds even if the
        // source is written to meanwhile.
        return hash ? hashFile(dst) : undefined;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'EEXIST' || code === 'ENOSPC') throw e;
        this.cloneWorks = false;
        fs.rmSync(fsPath(dst), { force: true });
      }
    }
    if (!hash) {
      // The addon's copy keeps a sparse file's holes (SEEK_DATA/SEEK_HOLE, native/jvs_hash.c);
      // copyFileSync would write them out as zeros. Its hash costs no extra read.
      if (nativeHashMany()) {
        copyAndHash(src, dst, mode);
        return undefined;
      }
      fs.copyFileSync(fsPath(src), fsPath(dst), fs.constants.COPYFILE_EXCL);
      return undefined;
    }
    return copyAndHash(src, dst, mode).hash;
  }
}

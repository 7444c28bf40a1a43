import type { EngineName } from '../format/descriptor.js';

/**
 * How file content is materialised. Engines only move bytes; the tree walk, metadata
 * and hard-link handling live in materialize.ts so every engine gets them the same.
 */
export interface Engine {
  readonly name: EngineName;
  /**
   * Create the new file `dst` with the content of `src` (permission bits `mode`).
   * With `hash` the SHA-256 of the content is returned, read in the same pass where
   * the engine reads at all; without it the engine need not read the file.
   */
  copyFile(src: string, dst: string, mode: number, hash: true): string;
  copyFile(src: string, dst: string, mode: number, hash: boolean): string | undefined;
  /**
   * Engines that clone a whole tree in one command (juicefs clone) implement this:
   * create `dst` (which must not exist) as a clone of `src`, preserving metadata.
   * materializeTree then prunes excluded paths and describes the result.
   */
  cloneTree?(src: string, dst: string): void;
  /**
   * SHA-256 of a file already on this engine's filesystem (a clone), where the engine
   * knows better than lseek where its data lies (juicefs-clone: sparse files).
   */
  hashFile?(file: string, size: number): string;
}

export const ENGINE_NAMES: readonly EngineName[] = ['juicefs-clone', 'reflink-copy', 'copy'];

/**
 * One entry as a manifest or a worktree state records it (index/manifestCodec.ts's
 * IndexedEntry, materialize.ts's ManifestEntry): what the walk saw and, for files, the
 * content hash.
 *
 * Records are made by this class rather than by object literals, for V8's sake. V8
 * gives every literal with the same keys in the same order one shared hidden class,
 * and the first value stored in a field fixes how the field is held: a small integer
 * (below 2^30) as is, any other number in a box. A single record whose size is no small
 * integer (a file of 1 GiB or more, or a size that arrived as a double), made anywhere,
 * retired that hidden class, and every record already made with it was converted on
 * its next read: ~0.8 µs each, 8 ms of an incremental snapshot of 10,000 files whose
 * ten new entries came from a walk while the 10,000 decoded ones waited to be read
 * (docs/performance.md). A class has hidden classes of its own, and the record made
 * below, before any other, holds its size as a double: every size fits from then on.
 */
export class EntryRecord {
  // `declare`: no field definitions are emitted (they would store undefined in each
  // field first); the constructor's assignments alone shape the object.
  declare contentHash?: string;
  declare target?: string;
  declare linkOf?: string;
  declare rel: string;
  declare type: 'dir' | 'file' | 'symlink';
  /** Permission bits (0o7777). */
  declare mode: number;
  declare size: number;
  declare mtimeNs: bigint;
  declare ctimeNs: bigint;
  declare dev: bigint;
  declare ino: bigint;

  constructor(rel: string, type: 'dir' | 'file' | 'symlink', mode: number, size: number, mtimeNs: bigint, ctimeNs: bigint, dev: bigint, ino: bigint) {
    this.rel = rel;
    this.type = type;
    this.mode = mode;
    this.size = size;
    this.mtimeNs = mtimeNs;
    this.ctimeNs = ctimeNs;
    this.dev = dev;
    this.ino = ino;
  }
}

// The first record: its size (not an integer) makes the field a double field for all.
new EntryRecord('', 'dir', 0, 0.5, 0n, 0n, 0n, 0n);

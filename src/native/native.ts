import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The optional addon built from native/jvs_native.c. */
export interface NativeAddon {
  renameExchange(a: string, b: string): void;
  syncfs(p: string): void;
  /** syncfs on a background thread; syncfsWait joins it and throws what it hit. Absent in older builds. */
  syncfsStart?(p: string): object;
  syncfsWait?(handle: object): void;
  lutimesNs(p: string, atimeNs: bigint, mtimeNs: bigint): void;
  /** Returns an fd holding an exclusive flock; throws code EAGAIN when another holder has it. */
  flockExclusive(p: string): number;
  /** The same with a shared flock (refused with EAGAIN while an exclusive holder has it). Absent in older builds. */
  flockShared?(p: string): number;
  /** Folders' entries and their lstat (10 values each, see native/jvs_tree.c) on up to `threads` threads; names sorted in UTF-16 code-unit order. */
  scanDirs(paths: string[], threads: number): Array<{ names: string[]; stats: BigInt64Array }>;
  /**
   * Every folder below root scanned by background threads; scanTreeWait joins them
   * (folders in no order). With `reuse`, folders the caller vouches for are taken from
   * an earlier finished scan instead of being read (native/jvs_tree.c, reuse_take).
   */
  scanTreeStart(root: string, threads: number, reuse?: ScanReuse): object;
  scanTreeWait(handle: object): Array<{ rel: string; names: string[]; stats: BigInt64Array }>;
  /** Of a finished scan: its folders, and how many were taken from the earlier scan (reuse). Absent in older builds. */
  scanTreeStats?(handle: object): { folders: number; reused: number };
  /** Hard links fromRoot/rel → toRoot/rel for `count` paths given as "rel\0rel\0…", made on `threads` background threads through fds of the two roots; linkWait joins them and returns the errno per path (0: linked). */
  linkStart(fromRoot: string, toRoot: string, rels: string, count: number, threads: number): object;
  linkWait(handle: object): Int32Array;
  /**
   * The finished scan (scanTreeStart's handle) in walk order, each file checked against
   * the worktree state (manifest chunks, concatenated) and the parent's (null: the same
   * list); the stage's folders made and the vouched files' links started (see
   * native/jvs_tree.c). Null when the chunks cannot be parsed. Absent in older builds.
   */
  classify?(scan: object, state: Buffer, probeNs: bigint, parent: Buffer | null, parentDir: string, stageDir: string, threads: number): {
    rels: string[];
    /** 0 dir, 1 file, 2 symlink, 3 anything else. */
    types: Uint8Array;
    /** The state record index that vouches for the entry (its link is in `links`), or -1. */
    vouched: Int32Array;
    stats: BigInt64Array;
    links: object | null;
    /** The entry index of each link of `links`. */
    linkAt: Uint32Array;
    /** How many records the state's chunks hold (the decoded list must have as many). */
    records: number;
  } | null;
  /**
   * An incremental restore's decisions on the finished scan of the worktree against the
   * snapshot's manifest chunks and the worktree state's (see native/jvs_tree.c).
   * Null when the chunks cannot be parsed. Absent in older builds.
   */
  restorePlan?(scan: object, target: Buffer, state: Buffer | null, probeNs: bigint): {
    /** Per manifest entry: the state record index vouching that the worktree file already holds it, or -1. */
    vouched: Int32Array;
    /** Per manifest entry: the scanned entry that stays at its path, or -1. */
    destIndex: Int32Array;
    destStats: BigInt64Array;
    removeRels: string[];
    removeTypes: Uint8Array;
  } | null;
  /**
   * SHA-256 of `count` files on up to `threads` threads (native/jvs_hash.c): mode 0 hashes
   * "a\0b\0…"; modes 1 (FICLONE), 2 (FICLONE, else copy) and 3 (copy) take "src\0dst\0…"
   * and `pre` (9 per job: ctime ns, mtime ns, size, ino, mode | 1<<20 to also set atime ns,
   * mtime ns, uid, gid). Mode | 8: hashes are known, a steady clone is not read (steady[i] = 1).
   * `roots` [src, dst]: paths are relative to them, opened without following symlinks;
   * mode | 16 (restore): every copy checked against `expected` (32 bytes per job), EBADMSG if not.
   * Throws with code/syscall/path/index.
   */
  hashMany(paths: string, count: number, mode: number, pre: BigInt64Array | null, threads: number, roots?: [string, string] | null, expected?: Buffer | null): { hashes: string; sizes: Float64Array; cloneRefused: boolean; byOtherThreads: number; steady: Uint8Array };
  /**
   * The payload root hash (native/jvs_roothash.c) of entries given as `fields` (per entry
   * its rel, then a file's content hash or a symlink's target, joined by "\0"), types
   * (0 dir, 1 file, 2 symlink), permission bits (& 0o777) and sizes. Null when it cannot
   * reproduce src/format/payloadHash.ts exactly; throws when a file has no content hash.
   */
  /**
   * Extended attributes of `count` entries ("rel\0rel\0…", "" the root) copied from
   * srcRoot to dstRoot on `threads` threads (native/jvs_xattr.c), each opened below its
   * root without following symlinks; flags 1: also remove what the source lacks.
   * Returns the losses as [index, name ("" for the whole entry), errno name, …]
   * with `withXattrs`: how many sources had any attribute.
   * Absent in older builds.
   */
  xattrCopy?(srcRoot: string, dstRoot: string, rels: string, count: number, flags: number, threads: number): Array<string | number> & { withXattrs: number };
  /** One entry's extended attributes as [name, value, …] sorted by name. Absent in older builds. */
  xattrGet?(root: string, rel: string): Array<string | Buffer>;
  /** Whether the filesystem holding the folder `root` keeps extended attributes at all. Absent in older builds. */
  xattrSupported?(root: string): boolean;
  rootHash(fields: string, types: Uint8Array, modes: Uint16Array, sizes: Float64Array): string | null;
  /**
   * The payload root hash of manifest chunks as the index stores them, concatenated
   * (src/index/manifestCodec.ts): the same as rootHash of the entries they decode to, or
   * null when the records are malformed or hold what only JavaScript decides (a file
   * without a hash, a symlink without a target, a NUL in a name, a size that is not a
   * safe integer). native/jvs_roothash.c. Absent in older builds.
   */
  rootHashRecords?(data: Buffer): string | null;
  /**
   * FNV-1a over each path's UTF-16 code units (manifestCodec.ts's fnv1a) of `count`
   * paths joined with "\0"; null when the string does not split into `count` paths.
   * native/jvs_chunks.c. Absent in older builds.
   */
  relHashes?(rels: string, count: number): Uint32Array | null;
  /**
   * An fd of `rel` opened below the folder `root` (itself never a symlink) without
   * following any symlink, the last component included (ELOOP; native/jvs_beneath.c).
   * `flags`: open(2) flags. The caller closes it. Absent in older builds.
   */
  openBeneath?(root: string, rel: string, flags: number): number;
  /**
   * Changes inside a tree through a directory fd of its root (native/jvs_beneath.c):
   * each resolves its entry's folder with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
   * and never follows the entry itself. Names are relative. Absent in older builds.
   */
  openRoot?(path: string): number;
  removeBeneath?(root: number, rel: string): boolean;
  mkdirBeneath?(root: number, rel: string, mode: number): void;
  renameBeneath?(fromRoot: number, from: string, toRoot: number, to: string): void;
  symlinkBeneath?(root: number, target: string, rel: string): void;
  linkBeneath?(fromRoot: number, from: string, toRoot: number, to: string): void;
  /** Which other processes hold files open below `prefix` (ending in "/"), scanned from /proc on a background thread (native/jvs_procfd.c). */
  openFilesStart?(prefix: string): object;
  openFilesWait?(handle: object): Array<{ pid: number; target: string; command: string }>;
  /** what: 1 owner, 2 permission bits (never through a symlink), 4 times. */
  metaBeneath?(root: number, rel: string, what: number, mode: number, uid: bigint, gid: bigint, atimeNs: bigint, mtimeNs: bigint): void;
  /**
   * SHA-256 of one file reading only the given data runs (sorted start, end pairs) and
   * hashing every other byte as zero (native/jvs_hash.c): for filesystems without
   * SEEK_DATA whose data runs are known otherwise (JuiceFS). With `root`, `path` is
   * relative to it and opened below its fd without following a symlink (ELOOP).
   * Absent in older builds.
   */
  hashRuns?(path: string, runs: BigInt64Array, root?: string): { hash: string; size: number };
}

let cached: NativeAddon | null | undefined;

/** The addon, or null when it was not built (callers then use their fallback). */
export function native(): NativeAddon | null {
  if (cached !== undefined) return cached;
  if (process.env.JVS_DISABLE_NATIVE === '1') return (cached = null);
  const here = path.dirname(fileURLToPath(import.meta.url));
  const require = createRequire(import.meta.url);
  try {
    cached = require(path.resolve(here, '../../build/Release/jvs_native.node')) as NativeAddon;
  } catch {
    cached = null;
  }
  return cached;
}

/**
 * An earlier whole-tree scan and the folders that may have changed since it began
 * (the mount's dirty tracking): `dirs` their own entries, `trees` everything below too.
 */
export interface ScanReuse {
  previous: object;
  dirs: string[];
  trees: string[];
}

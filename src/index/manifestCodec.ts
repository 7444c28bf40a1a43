import { createHash } from 'node:crypto';
import { nameBytes, nameFromUtf8 } from '../format/nameBytes.js';
import { native } from '../native/native.js';
import { EntryRecord } from '../fsutil/entryRecord.js';

/**
 * One entry of a manifest (a snapshot's) or of a worktree state. The stat fields
 * (dev, ino, ctimeNs, and mtimeNs/size/mode) are those of the *source* when the entry
 * was recorded: the worktree file a snapshot read, or the worktree file a restore
 * left behind. They are what change detection compares a fresh lstat against.
 */
export interface IndexedEntry {
  rel: string;
  type: 'dir' | 'file' | 'symlink';
  /** Permission bits (0o7777). */
  mode: number;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  dev: bigint;
  ino: bigint;
  /** Hex SHA-256 of the content (files). */
  contentHash?: string;
  /** Link target (symlinks). */
  target?: string;
  /** First path of the user hard-link group this file belongs to, when it is not that first path. */
  linkOf?: string;
}

/*
 * Binary layout of one chunk: a sequence of entries, each (stats are zero for dirs and symlinks)
 *   u8 type (0 dir, 1 file, 2 symlink) | u8 flags (1 hash, 2 target, 4 linkOf)
 *   u16 mode | f64 size | i64 mtimeNs | i64 ctimeNs | u64 dev | u64 ino
 *   u16 len + rel | [32 bytes hash] | [u16 len + target] | [u16 len + linkOf]
 * Fixed-size fields first so decoding needs no per-field allocation but the strings.
 * Strings are the names' bytes (format/nameBytes.ts): UTF-8 for the usual names, the
 * raw bytes of a name that is not UTF-8, as the kernel and the payload hash have them.
 * Longer strings (up to 4 GiB) use len 0xffff followed by a u32 length.
 */
const TYPES = ['dir', 'file', 'symlink'] as const;
const TYPE_CODE = { dir: 0, file: 1, symlink: 2 } as const;
const FIXED = 2 + 2 + 8 + 8 * 4;

export function encodeEntries(entries: readonly IndexedEntry[]): Buffer {
  // One buffer for the whole chunk: size it first, then write in place.
  const strLen = (n: number) => (n >= 0xffff ? 6 : 2) + n;
  let total = 0;
  const lens = new Array<number>(entries.length * 3);
  // Names that are not UTF-8 (rare): their bytes, made once.
  let odd: Map<string, Buffer> | undefined;
  const byteLen = (s: string): number => {
    if (s.isWellFormed()) return Buffer.byteLength(s, 'utf8');
    let v = (odd ??= new Map()).get(s);
    if (!v) odd.set(s, (v = nameBytes(s)));
    return v.length;
  };
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const r = byteLen(e.rel);
    const t = e.target !== undefined ? byteLen(e.target) : -1;
    const l = e.linkOf !== undefined ? byteLen(e.linkOf) : -1;
    lens[i * 3] = r; lens[i * 3 + 1] = t; lens[i * 3 + 2] = l;
    total += FIXED + strLen(r) + (e.type === 'file' && e.contentHash ? 32 : 0) + (t >= 0 ? strLen(t) : 0) + (l >= 0 ? strLen(l) : 0);
  }
  const b = Buffer.allocUnsafe(total);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 0;
  const putStr = (s: string, n: number) => {
    if (n >= 0xffff) {
      dv.setUint16(o, 0xffff, true); o += 2;
      dv.setUint32(o, n, true); o += 4;
    } else {
      dv.setUint16(o, n, true); o += 2;
    }
    const raw = odd?.get(s);
    o += raw ? raw.copy(b, o) : b.write(s, o, n, 'utf8');
  };
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const t = lens[i * 3 + 1]!;
    const l = lens[i * 3 + 2]!;
    const hasHash = e.type === 'file' && !!e.contentHash;
    b[o] = TYPE_CODE[e.type];
    b[o + 1] = (hasHash ? 1 : 0) | (t >= 0 ? 2 : 0) | (l >= 0 ? 4 : 0);
    dv.setUint16(o + 2, e.mode & 0xffff, true);
    dv.setFloat64(o + 4, e.size, true);
    // Folders and symlinks are re-read on every walk and never vouched for by stat, and
    // their times move whenever a restore touches them: storing zeros keeps manifest
    // chunks shared between snapshots (only files' stats are worth keeping).
    const keep = e.type === 'file';
    dv.setBigInt64(o + 12, keep ? e.mtimeNs : 0n, true);
    dv.setBigInt64(o + 20, keep ? e.ctimeNs : 0n, true);
    dv.setBigUint64(o + 28, keep ? BigInt.asUintN(64, e.dev) : 0n, true);
    dv.setBigUint64(o + 36, keep ? BigInt.asUintN(64, e.ino) : 0n, true);
    o += FIXED;
    putStr(e.rel, lens[i * 3]!);
    if (hasHash) o += b.write(e.contentHash!, o, 32, 'hex');
    if (t >= 0) putStr(e.target!, t);
    if (l >= 0) putStr(e.linkOf!, l);
  }
  return b;
}

export function decodeEntries(b: Buffer, out: IndexedEntry[] = []): IndexedEntry[] {
  // One DataView per chunk: fixed fields are read in place (no per-entry views or
  // arrays), strings are cut straight out of the buffer.
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const end = b.length;
  let o = 0;
  while (o < end) {
    if (o + FIXED > end) throw new Error('manifest chunk: truncated entry');
    const code = b[o]!;
    if (code > 2) throw new Error(`manifest chunk: bad entry type at ${o}`);
    const flags = b[o + 1]!;
    const mode = dv.getUint16(o + 2, true);
    const size = dv.getFloat64(o + 4, true);
    const mtimeNs = dv.getBigInt64(o + 12, true);
    const ctimeNs = dv.getBigInt64(o + 20, true);
    const dev = dv.getBigUint64(o + 28, true);
    const ino = dv.getBigUint64(o + 36, true);
    o += FIXED;
    let n = dv.getUint16(o, true);
    o += 2;
    if (n === 0xffff) { n = dv.getUint32(o, true); o += 4; }
    if (o + n > end) throw new Error('manifest chunk: truncated entry');
    const e: IndexedEntry = new EntryRecord(nameFromUtf8(b, o, o + n), TYPES[code]!, mode, size, mtimeNs, ctimeNs, dev, ino);
    o += n;
    if (flags & 1) { e.contentHash = b.toString('hex', o, o + 32); o += 32; }
    if (flags & 2) { [e.target, o] = readStr(b, dv, o); }
    if (flags & 4) { [e.linkOf, o] = readStr(b, dv, o); }
    out.push(e);
  }
  if (o !== end) throw new Error('manifest chunk: truncated entry');
  return out;
}

function readStr(b: Buffer, dv: DataView, o: number): [string, number] {
  let n = dv.getUint16(o, true);
  o += 2;
  if (n === 0xffff) { n = dv.getUint32(o, true); o += 4; }
  if (o + n > b.length) throw new Error('manifest chunk: truncated entry');
  return [nameFromUtf8(b, o, o + n), o + n];
}

/**
 * Whether two entries encode to the same bytes (false answers are always safe: the
 * chunk is then encoded again). Folders and symlinks store no stat, only files do.
 */
export function sameEncoding(a: IndexedEntry, b: IndexedEntry): boolean {
  if (a === b) return true;
  if (a.rel !== b.rel || a.type !== b.type || (a.mode & 0xffff) !== (b.mode & 0xffff) || a.size !== b.size || a.target !== b.target || a.linkOf !== b.linkOf) return false;
  if (a.type !== 'file') return true;
  return a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.dev === b.dev && a.ino === b.ino && (a.contentHash || undefined) === (b.contentHash || undefined);
}

/** FNV-1a of a string's UTF-16 code units: cheap, stable, good enough to place chunk cuts. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Average entries per chunk (a power of two). */
export const CHUNK_TARGET = 64;

/**
 * Cut an entry list into chunks at content-defined points: a chunk ends after any
 * entry whose path hashes to 0 modulo CHUNK_TARGET (and at 4×CHUNK_TARGET entries at
 * the latest). Cuts depend only on the paths, so a snapshot that changed ten files
 * shares every chunk with its parent except the ~ten that hold the changed entries;
 * inserting or removing paths moves no cut elsewhere.
 */
export function chunkEntries(entries: readonly IndexedEntry[], reuse?: (part: readonly IndexedEntry[]) => { hash: Buffer; data: Buffer } | undefined): Array<{ hash: Buffer; data: Buffer }> {
  const out: Array<{ hash: Buffer; data: Buffer }> = [];
  let start = 0;
  const flush = (end: number) => {
    const part = entries.slice(start, end);
    const known = reuse?.(part);
    if (known) out.push({ hash: known.hash, data: known.data });
    else {
      const data = encodeEntries(part);
      out.push({ hash: createHash('sha256').update(data).digest(), data });
    }
    start = end;
  };
  const hashes = relHashes(entries);
  for (let i = 0; i < entries.length; i++) {
    if (((hashes ? hashes[i]! : fnv1a(entries[i]!.rel)) & (CHUNK_TARGET - 1)) === 0 || i + 1 - start >= CHUNK_TARGET * 4) flush(i + 1);
  }
  if (start < entries.length) flush(entries.length);
  return out;
}

/**
 * fnv1a of every entry's path, by the addon (native/jvs_chunks.c) when it is built:
 * a one-shot command runs this loop before V8 optimises it, 10-15 ms for 10,000 paths
 * in the interpreter. Undefined without the addon or when a path holds a NUL (the
 * joined string then does not split back); the caller hashes in JavaScript.
 */
export function relHashes(entries: readonly { rel: string }[]): Uint32Array | undefined {
  const n = native();
  if (!n?.relHashes || entries.length === 0) return undefined;
  return n.relHashes(entries.map((e) => e.rel).join('\0'), entries.length) ?? undefined;
}

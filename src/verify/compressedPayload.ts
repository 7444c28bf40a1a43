import { createHash, randomBytes, type Hash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { JvsError } from '../errors.js';
import { compressionOf, realName, storedName } from '../format/compression.js';
import type { IndexedEntry } from '../index/manifestCodec.js';
import type { Descriptor } from '../format/descriptor.js';
import { payloadLine, type HashedEntry } from '../format/payloadHash.js';
import { permBits, readLink, walkTree } from '../fsutil/walk.js';
import { READY_FILE, type Layout } from '../repo/layout.js';
import { loadDescriptors, readDescriptor } from '../repo/snapshots.js';
import { listWorktreeNames } from '../repo/worktreeConfig.js';

/** node:zlib on first use (only compressed snapshots need it; loading it costs every snapshot and restore ~0.4 ms). */
const zlib = () => createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib');

/**
 * Reading compressed snapshots (src/format/compression.ts has the layout). Their payload
 * root hash describes the tree before compression, real modes included, but the
 * reference writes every `.gz` with mode 0600 and keeps the real modes nowhere else.
 * Our own compressed snapshots keep each file's mode on its `.gz` (the reference reads
 * the bytes only), so the stored modes give the hash back at once. For the reference's,
 * the modes are recovered by search: the root hash is the oracle, candidates come from
 * the same paths elsewhere (other snapshots, worktrees) and common modes. A match proves
 * bytes and modes exactly; without one the snapshot does not verify.
 */

export interface LogicalEntry extends HashedEntry {
  /** Where the entry is stored inside the snapshot folder (a file's `<name>.gz`). */
  stored: string;
  /** Stored file this one shares an inode with (a user hard-link group kept by us). */
  linkOf?: string;
  mtimeMs: number;
}

export interface CompressedPayload {
  entries: LogicalEntry[];
  /** The root hash of `entries` as finally moded; equal to the descriptor's when `verified`. */
  hash: string;
  verified: boolean;
  /** How the modes were found: stored on the `.gz` files (ours), or recovered by search. */
  modes: 'stored' | 'recovered' | 'unknown';
  bytes: number;
}

const READY_NAMES = new Set([READY_FILE, storedName(READY_FILE)]);

function gunzip(abs: string, rel: string, id: string): Buffer {
  try {
    return zlib().gunzipSync(fs.readFileSync(abs));
  } catch (e) {
    throw new JvsError('E_PAYLOAD_HASH_MISMATCH', `snapshot ${id}: ${rel} is not a readable gzip file (${(e as Error).message})`, {
      hint: `the snapshot is damaged; \`jvs verify ${id}\` reports it, restore another snapshot`,
      cause: e,
    });
  }
}

/** The logical tree of a compressed snapshot: real names, uncompressed sizes and hashes. */
export function readCompressed(dir: string, d: Descriptor): LogicalEntry[] {
  const walk = walkTree(dir, { include: (rel) => !READY_NAMES.has(rel) });
  const firstOfInode = new Map<string, string>();
  const hashOfInode = new Map<string, { size: number; contentHash: string }>();
  const out: LogicalEntry[] = [];
  for (const e of walk.entries) {
    const abs = path.join(dir, e.rel);
    const base: LogicalEntry = { rel: e.rel, stored: e.rel, type: e.type, mode: permBits(e.stat), size: 0, mtimeMs: Number(e.stat.mtimeNs / 1_000_000n) };
    if (e.type === 'dir') out.push(base);
    else if (e.type === 'symlink') out.push({ ...base, target: readLink(abs) });
    else {
      const slash = e.rel.lastIndexOf('/');
      const name = realName(e.rel.slice(slash + 1));
      // A file without `.gz` cannot come from a compressor; it is kept as stored.
      const rel = name === undefined ? e.rel : e.rel.slice(0, slash + 1) + name;
      const key = `${e.stat.dev}:${e.stat.ino}`;
      const first = e.stat.nlink > 1n ? firstOfInode.get(key) : undefined;
      let content = hashOfInode.get(key);
      if (!content) {
        const bytes = name === undefined ? fs.readFileSync(abs) : gunzip(abs, e.rel, d.snapshot_id);
        content = { size: bytes.length, contentHash: createHash('sha256').update(bytes).digest('hex') };
        if (e.stat.nlink > 1n) hashOfInode.set(key, content);
      }
      if (e.stat.nlink > 1n && first === undefined) firstOfInode.set(key, rel);
      out.push({ ...base, rel, ...content, ...(first !== undefined ? { linkOf: first } : {}) });
    }
  }
  return out;
}

/** Modes tried for a file when no other copy of its path says otherwise, likeliest first. */
const COMMON_MODES = [0o644, 0o755, 0o600, 0o664, 0o775, 0o700, 0o640, 0o750, 0o444, 0o555, 0o666, 0o777];
/** Bytes of line text hashed at most while searching (about two seconds of one core). */
const SEARCH_BUDGET_BYTES = 3 * 1024 ** 3;

/**
 * Find the file modes under which `entries` hash to `want`. `hints(rel)` lists modes
 * seen for the same path elsewhere, most trusted first. Tries the hinted assignment,
 * then every single-file change, then every two-file change, within a budget.
 */
export function recoverModes(entries: LogicalEntry[], want: string, hints: (rel: string) => number[], looksExecutable: (e: LogicalEntry) => boolean): Map<string, number> | undefined {
  const lines = entries.map((e) => ({ e, line: payloadLine(e) + '\n' }));
  const files = lines.filter((l) => l.e.type === 'file');
  const candidates = files.map((l) => {
    const first = hints(l.e.rel);
    const guess = looksExecutable(l.e) ? [0o755, 0o644] : [0o644, 0o755];
    return [...new Set([...first, ...guess, ...COMMON_MODES])];
  });
  const lineOf = (i: number, mode: number) => `file:${files[i]!.e.rel}:mode=${mode.toString(8).padStart(4, '0')},size=${files[i]!.e.size}:${files[i]!.e.contentHash}\n`;
  const choice = candidates.map(() => 0);
  const result = () => new Map(files.map((l, i) => [l.e.rel, candidates[i]![choice[i]!]!]));
  const fileIndex = new Map(files.map((l, i) => [l, i]));
  // Lines differ before the mode (their paths are unique) unless a path holds ':'; then
  // every attempt re-sorts (slow, and rare).
  const stable = !entries.some((e) => e.rel.includes(':'));
  let spent = 0;
  if (!stable) {
    const attempt = () => {
      const text = lines.map((l) => {
        const i = fileIndex.get(l);
        return Buffer.from(i === undefined ? l.line : lineOf(i, candidates[i]![choice[i]!]!));
      });
      text.sort(Buffer.compare);
      const all = Buffer.concat(text);
      spent += all.length;
      return createHash('sha256').update(all).digest('hex') === want;
    };
    return search(files.length, candidates, choice, attempt, () => spent) ? result() : undefined;
  }
  // Stable order: the text of the first assignment once, the hash state before each line
  // kept, so an attempt that changes lines p < q hashes only from p on, without copying.
  const ordered = lines.map((l) => {
    const i = fileIndex.get(l);
    return { i, bytes: Buffer.from(i === undefined ? l.line : lineOf(i, candidates[i]![0]!)) };
  });
  ordered.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  const text = Buffer.concat(ordered.map((o) => o.bytes));
  const offset: number[] = [0];
  for (const o of ordered) offset.push(offset[offset.length - 1]! + o.bytes.length);
  const position = new Map<number, number>();
  ordered.forEach((o, p) => o.i !== undefined && position.set(o.i, p));
  const before: Hash[] = [];
  const h = createHash('sha256');
  for (let p = 0; p < ordered.length; p++) {
    before.push(h.copy());
    h.update(text.subarray(offset[p]!, offset[p + 1]!));
  }
  const attempt = () => {
    const changed = files.map((_, i) => i).filter((i) => choice[i] !== 0).map((i) => ({ p: position.get(i)!, line: lineOf(i, candidates[i]![choice[i]!]!) }));
    changed.sort((a, b) => a.p - b.p);
    if (!changed.length) {
      spent += text.length;
      return createHash('sha256').update(text).digest('hex') === want;
    }
    const x = before[changed[0]!.p]!.copy();
    changed.forEach((c, k) => {
      x.update(c.line);
      x.update(text.subarray(offset[c.p + 1]!, k + 1 < changed.length ? offset[changed[k + 1]!.p]! : text.length));
    });
    spent += text.length - offset[changed[0]!.p]!;
    return x.digest('hex') === want;
  };
  return search(files.length, candidates, choice, attempt, () => spent) ? result() : undefined;
}

/** The first assignment, then every single-file change, then every two-file change, within the budget. */
function search(n: number, candidates: number[][], choice: number[], attempt: () => boolean, spent: () => number): boolean {
  if (attempt()) return true;
  for (let i = 0; i < n; i++) {
    for (let a = 1; a < candidates[i]!.length; a++) {
      choice[i] = a;
      if (attempt()) return true;
      if (spent() > SEARCH_BUDGET_BYTES) return false;
    }
    choice[i] = 0;
  }
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      for (let a = 1; a < candidates[i]!.length; a++) {
        for (let b = 1; b < candidates[j]!.length; b++) {
          choice[i] = a;
          choice[j] = b;
          if (attempt()) return true;
          if (spent() > SEARCH_BUDGET_BYTES) return false;
        }
      }
      choice[j] = 0;
    }
    choice[i] = 0;
  }
  return false;
}

function rootHash(entries: LogicalEntry[]): string {
  const lines = entries.map((e) => Buffer.from(payloadLine(e) + '\n'));
  lines.sort(Buffer.compare);
  return createHash('sha256').update(Buffer.concat(lines)).digest('hex');
}

/** Modes other copies of each path have: folders of uncompressed trees (snapshots, worktrees). */
export function modeHintsFrom(roots: readonly string[]): (rel: string) => number[] {
  return (rel) => {
    const seen: number[] = [];
    for (const r of roots) {
      try {
        const st = fs.lstatSync(path.join(r, rel));
        if (st.isFile() && !seen.includes(st.mode & 0o7777)) seen.push(st.mode & 0o7777);
      } catch {
        /* not there */
      }
    }
    return seen;
  };
}

const EXEC_MAGIC = [Buffer.from('#!'), Buffer.from([0x7f, 0x45, 0x4c, 0x46])];

/**
 * Read a compressed snapshot and settle its modes: stored ones when they give the
 * recorded hash, else recovered (hints from `hintRoots`), else the stored ones, unverified.
 */
export function loadCompressedPayload(dir: string, d: Descriptor, hintRoots: () => string[]): CompressedPayload {
  const entries = readCompressed(dir, d);
  const bytes = entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
  const stored = rootHash(entries);
  if (stored === d.payload_root_hash) return { entries, hash: stored, verified: true, modes: 'stored', bytes };
  const looksExecutable = (e: LogicalEntry) => {
    try {
      const head = zlib().gunzipSync(fs.readFileSync(path.join(dir, e.stored)), { finishFlush: zlib().constants.Z_SYNC_FLUSH }).subarray(0, 4);
      return EXEC_MAGIC.some((m) => head.subarray(0, m.length).equals(m));
    } catch {
      return false;
    }
  };
  const modes = recoverModes(entries, d.payload_root_hash, modeHintsFrom(hintRoots()), looksExecutable);
  if (!modes) return { entries, hash: stored, verified: false, modes: 'unknown', bytes };
  const moded = entries.map((e) => (e.type === 'file' ? { ...e, mode: modes.get(e.rel)! } : e));
  return { entries: moded, hash: d.payload_root_hash, verified: true, modes: 'recovered', bytes };
}

/**
 * Write the logical tree into `dest` (created; must not exist): files decompressed
 * under their real names with their modes and times, folders, symlinks, and the hard
 * links of a user's link group re-formed. `dest` is private staging (under `.jvs/tmp`).
 */
export function expandInto(dir: string, p: CompressedPayload, dest: string, id: string): void {
  fs.mkdirSync(dest, { mode: 0o700 });
  const dirs: LogicalEntry[] = [];
  for (const e of p.entries) {
    const out = path.join(dest, e.rel);
    if (e.type === 'dir') {
      fs.mkdirSync(out, { mode: 0o700 });
      dirs.push(e);
    } else if (e.type === 'symlink') {
      fs.symlinkSync(e.target!, out);
    } else if (e.linkOf !== undefined) {
      fs.linkSync(path.join(dest, e.linkOf), out);
    } else {
      const bytes = e.stored === e.rel ? fs.readFileSync(path.join(dir, e.stored)) : gunzip(path.join(dir, e.stored), e.stored, id);
      fs.writeFileSync(out, bytes, { mode: 0o600, flag: 'wx' });
      fs.chmodSync(out, e.mode);
      fs.utimesSync(out, e.mtimeMs / 1000, e.mtimeMs / 1000);
    }
  }
  // Folder modes and times after their content (a read-only folder still receives it).
  for (const e of dirs.reverse()) {
    const out = path.join(dest, e.rel);
    fs.chmodSync(out, e.mode);
    fs.utimesSync(out, e.mtimeMs / 1000, e.mtimeMs / 1000);
  }
  fs.chmodSync(dest, fs.statSync(dir).mode & 0o7777);
}

/** Uncompressed trees of a repository whose files may show a path's real mode: worktrees, then plain snapshots. */
export function hintRoots(layout: Layout): string[] {
  const roots: string[] = [];
  for (const name of listWorktreeNames(layout)) roots.push(layout.payload(name));
  const { descriptors } = loadDescriptors(layout);
  for (const d of descriptors) if (d.compression === undefined) roots.push(layout.snapshotDir(d.snapshot_id));
  return roots;
}

/**
 * Decompress snapshot `d` into a private folder under `.jvs/tmp`, refusing it unless
 * its tree hashes to the recorded root hash, and hand the folder to `use`. The folder
 * is removed afterwards unless `use` moved it away (`keep`: the caller owns it then).
 */
export function expandCompressed<T>(layout: Layout, d: Descriptor, use: (tree: string) => T, keep = false): T & { files: number } {
  const p = loadCompressedPayload(layout.snapshotDir(d.snapshot_id), d, () => hintRoots(layout));
  if (!p.verified) {
    throw new JvsError('E_PAYLOAD_HASH_MISMATCH', `compressed snapshot ${d.snapshot_id} does not match its payload root hash: its files were changed, or their modes cannot be recovered (the compressed layout does not keep them)`, {
      hint: `nothing was written; \`jvs verify ${d.snapshot_id}\` reports it, \`jvs history\` lists other snapshots`,
    });
  }
  const tree = layout.tmpPath(`expand-${d.snapshot_id}-${randomBytes(4).toString('hex')}`);
  fs.mkdirSync(layout.tmp, { recursive: true });
  try {
    expandInto(layout.snapshotDir(d.snapshot_id), p, tree, d.snapshot_id);
    const r = use(tree);
    const files = p.entries.filter((e) => e.type === 'file').length;
    return (typeof r === 'object' && r !== null ? Object.assign(r, { files }) : { files }) as T & { files: number };
  } finally {
    if (!keep || fs.existsSync(tree)) fs.rmSync(tree, { recursive: true, force: true });
  }
}

/**
 * The manifest of a compressed snapshot (undefined for a plain one): its decompressed
 * tree, verified against the root hash. Stats are the stored files' times; there is no
 * inode to share, so nothing ever links to a compressed snapshot's files.
 */
export function compressedManifest(layout: Layout, id: string): IndexedEntry[] | undefined {
  const d = readDescriptor(layout, id);
  if (!compressionOf(d)) return undefined;
  const p = loadCompressedPayload(layout.snapshotDir(id), d, () => hintRoots(layout));
  if (!p.verified) {
    throw new JvsError('E_PAYLOAD_HASH_MISMATCH', `compressed snapshot ${id} does not match its payload root hash`, { hint: `\`jvs verify ${id}\` reports it` });
  }
  return p.entries.map((e) => ({
    rel: e.rel,
    type: e.type,
    mode: e.mode,
    size: e.type === 'file' ? e.size : 0,
    mtimeNs: BigInt(Math.round(e.mtimeMs)) * 1_000_000n,
    ctimeNs: 0n,
    dev: 0n,
    ino: 0n,
    ...(e.contentHash ? { contentHash: e.contentHash } : {}),
    ...(e.target !== undefined ? { target: e.target } : {}),
    ...(e.linkOf !== undefined ? { linkOf: e.linkOf } : {}),
  }));
}

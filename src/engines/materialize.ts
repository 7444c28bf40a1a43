import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HashedEntry } from '../format/payloadHash.js';
import { hashFile } from '../fsutil/fileHash.js';
import { permBits, readLink, scannedSize, scannedStat, statRecord, under, walkTree, type EntryStat, type EntryType, type PendingWalk, type TreeEntry, type WalkFilter } from '../fsutil/walk.js';
import type { Engine } from './engine.js';
import { applyCopyMetadata, applyMetadata } from './metadata.js';
import { copyHashed, copyKnown, plainFileBelow, runParallel, worthParallel, type ParallelJob } from './parallelCopy.js';
import { materializeByClone } from './materializeClone.js';
import { keepXattrs, sameXattrs } from './xattrs.js';
import { native } from '../native/native.js';
import { JvsError } from '../errors.js';
import { tracePhase } from '../trace.js';
import { faultPoint } from '../repo/faults.js';
import { fsPath } from '../format/nameBytes.js';

/** One entry of a materialised tree: what the payload hash and the manifest need. */
export interface ManifestEntry extends HashedEntry {
  /** Source stat at the time it was read (the manifest keys change detection on it). */
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  dev: bigint;
  /** rel of the first path of this hard-link group, when the entry is a user hard link. */
  linkOf?: string;
}

export interface MaterializeResult {
  entries: ManifestEntry[];
  /**
   * Completes deferred work (background hard links, then folder metadata); with
   * `deferFinish` the caller must call it before syncing the tree. Idempotent; returns
   * true when an entry's hash or size changed while finishing (recompute from them).
   */
  finish?(): boolean;
  /** Whether finish() has background work to wait for (links still being made). */
  pending?: boolean;
  /** Things that could not be kept exactly, for the descriptor's audit record. Never silent. */
  degraded: string[];
  bytes: number;
  /** Clone engines: whether the clone was walked (false: the unchanged source stood for it). */
  cloneWalked?: boolean;
  stats?: MaterializeStats;
  /**
   * Whether an entry this run copied (not linked from the parent) had extended
   * attributes; set by finish(). Undefined: not looked (a whole-tree clone keeps them).
   */
  xattrsSeen?: boolean;
}

export interface MaterializeOptions extends WalkFilter {
  /** Called with bytes done so far, for progress bars; never required. */
  onProgress?(done: number, total: number): void;
  /** Skip entries by base name (e.g. `.READY` when copying out of a snapshot). */
  skipNames?: ReadonlySet<string>;
  /** Incremental snapshots: what is already known about the source (see KnownContent). */
  known?: KnownContent;
  /** false: do not hash files (a fork takes hashes from the snapshot's manifest). Default true. */
  hash?: boolean;
  /** Return before background work is done; the caller then calls result.finish(). */
  deferFinish?: boolean;
  /** The source walk, already started by the caller with this same selection (see startWalk). */
  walk?: PendingWalk;
  /**
   * A clock reading of the source's file system taken before materialising began (the
   * racy-clean probe). Clone engines: when no entry of the source changed since (every
   * ctime older), the source walk stands for the walk of the clone (materializeClone.ts).
   */
  probeNs?: bigint;
}

/**
 * What an incremental snapshot knows before it reads anything (src/index provides it).
 * Contract: `trusted` answers only when the file's stat proves it unchanged since its
 * content was last read; `parent` describes the parent snapshot's entry at the same
 * path (snapshots are immutable, so its file holds exactly that content and metadata).
 */
export interface KnownContent {
  /**
   * The recorded entry of a file whose stat proves it unchanged since its content was
   * last read: its fields are then exactly what this walk would record (same stat),
   * with the content hash. Never mutated: the object may be shared with the index's
   * decoded lists, and reusing it lets unchanged index chunks be recognised by identity.
   */
  unchanged(rel: string, stat: EntryStat): ManifestEntry | undefined;
  parent(rel: string): { contentHash?: string; type: string; size: number; mode: number; mtimeNs: bigint } | undefined;
  /** The parent snapshot's folder; and whether its file at `rel` may be hard-linked (not one of the user's link groups). */
  parentDir: string;
  linkable(rel: string): boolean;
  /** Hard-link files whose content equals the parent's from the parent snapshot (copy engine). */
  link: boolean;
  /**
   * The same knowledge in the index's own encoding, for the addon's classify: the
   * worktree state's manifest chunks (concatenated; record i is stateEntries[i]), its
   * clock probe, and the parent's chunks (null: the parent's manifest is the state).
   */
  native?: { state: Buffer; stateEntries(): readonly ManifestEntry[]; probeNs: bigint; parent: Buffer | null };
}

const TYPE_NAMES: readonly EntryType[] = ['dir', 'file', 'symlink'];

/** Counts of how files reached the new tree, for results and the bench. */
export interface MaterializeStats {
  linked: number;
  copied: number;
  /** Files read only to compare with the parent (racy or unknown stat), then linked or copied. */
  compared: number;
  bytesCopied: number;
  /** Copies done by the second thread (large trees only). */
  byWorker?: number;
  /** Files the addon's classify vouched for and linked (the rest were decided in JavaScript). */
  vouchedNatively?: number;
}

/**
 * Copy the tree `srcRoot` into `dstRoot` (created; must not exist) with `engine`,
 * keeping symlinks as links (never followed), modes, times, owners (as root) and hard
 * links between files of the tree. Directory metadata is applied after its children,
 * so read-only folders still receive their content.
 */
export function materializeTree(srcRootIn: string, dstRootIn: string, engine: Engine, opts: MaterializeOptions = {}): MaterializeResult {
  const srcRoot = path.resolve(srcRootIn);
  const dstRoot = path.resolve(dstRootIn);
  // Copies open their source and destination below fds of these (parallelCopy.ts roots).
  const roots = [srcRoot, dstRoot] as const;
  const skip = opts.skipNames;
  const include = opts.include;
  const filter: WalkFilter = {
    include: (rel, isDir) => {
      if (skip && skip.has(rel.slice(rel.lastIndexOf('/') + 1))) return false;
      return include ? include(rel, isDir) : true;
    },
  };
  // Whole-tree cloning engines (juicefs-clone): clone, prune, describe the clone.
  if (engine.cloneTree) return materializeByClone(srcRoot, dstRoot, (s, d) => engine.cloneTree!(s, d), filter, opts, engine.hashFile?.bind(engine));
  const rootStat = fs.lstatSync(srcRoot, { bigint: true });
  fs.mkdirSync(dstRoot, { mode: 0o700 });
  // The usual incremental snapshot (copy engine, whole tree, an index): the addon puts
  // the scan in walk order, decides which files their state record vouches for, makes
  // the stage's folders and starts linking those files, all without an object per entry.
  const k = opts.known;
  // JVS_NO_CLASSIFY=1 takes the JavaScript path instead (a diagnostic switch; the tests compare both).
  const classified = k?.link && k.native && opts.walk?.scan && !opts.skipNames && process.env.JVS_NO_CLASSIFY !== '1' ? native()?.classify?.(opts.walk.scan, k.native.state, k.native.probeNs, k.native.parent, k.parentDir, dstRoot, os.availableParallelism()) ?? undefined : undefined;
  const walk = classified ? undefined : opts.walk ? opts.walk.result() : walkTree(srcRoot, filter);
  tracePhase('materialize: walk');
  faultPoint('materialize.walked');
  const unsupported = walk ? walk.unsupported : classified!.rels.filter((_, i) => classified!.types[i] === 3);
  const degraded = unsupported.map((rel) => `skipped special file (socket, FIFO or device): ${rel}`);
  let total = 0;
  let fileCount = 0;
  if (walk) {
    for (const e of walk.entries) if (e.type === 'file') (total += Number(e.stat.size)), fileCount++;
  } else {
    const c = classified!;
    for (let i = 0; i < c.types.length; i++) {
      if (c.types[i] !== 1) continue;
      fileCount++;
      total += scannedSize(c.stats, i);
    }
  }

  const entries: ManifestEntry[] = [];
  const firstOfInode = new Map<string, ManifestEntry>();
  const dirs: Array<{ abs: string; stat: EntryStat }> = [];
  let done = 0;
  const stats: MaterializeStats = { linked: 0, copied: 0, compared: 0, bytesCopied: 0 };
  // Large trees: copies that must read (and hash) are queued and run on both cores after
  // the walk; links and unchanged files are placed on the way (they cost no reads).
  const batchable = opts.hash !== false && (engine.name === 'copy' || engine.name === 'reflink-copy');
  const queue: Deferred[] | undefined = batchable && worthParallel(fileCount, total) ? [] : undefined;
  const queuedRel = new Set<string>();
  // Unchanged files to hard-link from the parent: handed to native threads in batches
  // while this loop goes on (a link costs ~10 µs of kernel time on ext4, the bulk of an
  // incremental snapshot). Without the addon each is linked on the way.
  const links = native() ? linkBatcher(engine, stats, opts.known?.parentDir ?? '', srcRoot, dstRoot, entries, (rel) => {
    fromParent.delete(rel); // a refused link became a copy: it needs the attributes
    xattrRels.push(rel);
  }) : undefined;
  // Where each classified entry lands in `entries` (special files are left out), and the
  // addon's running links, joined by links.wait() from here on, failure or not.
  const at = classified ? new Int32Array(classified.types.length) : undefined;
  if (classified?.links) {
    const c = classified;
    links!.adopt(c.links!, c.linkAt.length, (j) => {
      const i = c.linkAt[j]!;
      return { rel: c.rels[i]!, e: { rel: c.rels[i]!, type: 'file', stat: scannedStat(c.stats, i) }, m: entries[at![i]!]!, at: at![i]! };
    });
  }
  // The usual file of an incremental snapshot: unchanged, alone on its inode, equal to
  // the parent's. Its recorded entry is reused as is and its link queued, with no
  // per-entry strings or objects. (The addon's classify applies the same rule.)
  const linkAsRecorded = links && k?.link ? (e: TreeEntry): ManifestEntry | undefined => {
    if (e.stat.nlink !== 1n) return undefined;
    const r = k.unchanged(e.rel, e.stat);
    if (!r || r.linkOf !== undefined || !r.contentHash) return undefined;
    const p = k.parent(e.rel);
    if (!p || (p !== r && !(p.type === 'file' && p.contentHash === r.contentHash && p.size === r.size && p.mode === r.mode && p.mtimeNs === r.mtimeNs))) return undefined;
    return k.linkable(e.rel) ? r : undefined;
  } : undefined;
  const knownQueue: Deferred[] | undefined = batchable && native() ? [] : undefined;
  // Entries this run creates (not links to the parent's inodes): their extended
  // attributes are copied once everything else is in place (xattrs.ts).
  const xattrRels: string[] = [''];
  const fromParent = new Set<string>();
  const laterLinks: Array<{ first: ManifestEntry; dst: string; m: ManifestEntry }> = [];

  /** One entry into the new tree (`dirMade`: its folder exists already). */
  const place = (e: TreeEntry, dirMade: boolean): void => {
    if (e.type === 'file' && linkAsRecorded) {
      const r = linkAsRecorded(e);
      if (r) {
        links!.push({ rel: e.rel, e, m: r, at: entries.length });
        entries.push(r);
        return;
      }
    }
    const src = under(srcRoot, e.rel);
    const dst = under(dstRoot, e.rel);
    const m: ManifestEntry = statRecord(e);
    switch (e.type) {
      case 'dir':
        if (!dirMade) fs.mkdirSync(fsPath(dst), { mode: 0o700 });
        dirs.push({ abs: dst, stat: e.stat });
        xattrRels.push(e.rel);
        break;
      case 'symlink':
        m.target = readLink(src);
        fs.symlinkSync(fsPath(m.target), fsPath(dst));
        applyMetadata(dst, e.stat, true);
        xattrRels.push(e.rel);
        break;
      case 'file': {
        const key = e.stat.nlink > 1n ? `${e.stat.dev}:${e.stat.ino}` : '';
        const first = key ? firstOfInode.get(key) : undefined;
        if (first !== undefined && queuedRel.has(first.rel)) {
          m.linkOf = first.rel;
          laterLinks.push({ first, dst, m });
          break;
        }
        if (first !== undefined) {
          fs.linkSync(fsPath(under(dstRoot, first.rel)), fsPath(dst));
          m.linkOf = first.rel;
          m.contentHash = first.contentHash;
          m.size = first.size;
          break;
        }
        if (key) firstOfInode.set(key, m);
        xattrRels.push(e.rel);
        if (placeFile(src, dst, e, m, engine, opts, stats, roots, queue, links, knownQueue, { srcRoot, fromParent })) {
          queuedRel.add(e.rel);
          break;
        }
        done += m.size;
        opts.onProgress?.(done, total);
        break;
      }
    }
    entries.push(m);
  };

  try {
    if (walk) for (const e of walk.entries) place(e, false);
    else {
      const c = classified!;
      stats.vouchedNatively = c.linkAt.length;
      const recorded = k!.native!.stateEntries();
      if (recorded.length !== c.records) {
        throw new JvsError('E_INTERNAL', `the index's worktree state decoded to ${recorded.length} entries where the addon read ${c.records}`, {
          hint: 'run `jvs doctor --strict` (it rebuilds the index), then take the snapshot again',
        });
      }
      for (let i = 0; i < c.types.length; i++) {
        const v = c.vouched[i]!;
        at![i] = entries.length;
        if (v >= 0) entries.push(recorded[v]!);
        else if (c.types[i] !== 3) place({ rel: c.rels[i]!, type: TYPE_NAMES[c.types[i]!]!, stat: scannedStat(c.stats, i) }, true);
      }
    }
    if (queue?.length) {
      const results = runParallel(
        queue.map((q) => q.job),
        engine.name,
        (job) => copyHashed(engine, job),
        (r) => {
          done += r.size; // progress as batches finish (a 2 TB first snapshot takes a while)
          opts.onProgress?.(done, total);
        },
      );
      stats.byWorker = results.byWorker ?? 0;
      queue.forEach((q, i) => {
        q.m.contentHash = results[i]!.hash;
        finishCopy(q.dst, q.e, q.m, stats, results[i]!.size, !!results[i]!.metaApplied);
      });
    }
    if (knownQueue?.length) {
      // Unchanged files that are copied, not linked (reflink-copy, or a parent that
      // differs): cloned on every core, read only if a source changed meanwhile.
      const results = copyKnown(knownQueue.map((q) => q.job), engine);
      knownQueue.forEach((q, i) => tookKnown(q.dst, q.e, q.m, stats, results[i]!, q.trusted!));
    }
  } catch (e) {
    // Stop writing into the stage before the caller removes it.
    try {
      links?.wait(); // joins the batches already started (the rest never start)
    } catch {
      /* the first failure is the one reported */
    }
    throw e;
  }
  tracePhase('materialize: place');
  // Links run in the background (native threads) when the caller can wait for them
  // later: the root hash and the index chunks are worked out meanwhile. Folder
  // metadata comes after every link (a new link moves its folder's mtime).
  links?.close();
  // Members of link groups take their first path's content now (the link itself waits).
  for (const l of laterLinks) {
    l.m.contentHash = l.first.contentHash;
    l.m.size = l.first.size;
  }
  let finished = false;
  const finish = (): boolean => {
    if (finished) return false;
    finished = true;
    let changed = links ? links.wait() : false;
    tracePhase('materialize: links');
    for (const l of laterLinks) {
      fs.linkSync(fsPath(under(dstRoot, l.first.rel)), fsPath(l.dst));
      if (l.m.contentHash !== l.first.contentHash || l.m.size !== l.first.size) changed = true;
      l.m.contentHash = l.first.contentHash;
      l.m.size = l.first.size;
    }
    if (queue?.length || links?.size) opts.onProgress?.(total, total);
    for (let i = dirs.length - 1; i >= 0; i--) applyMetadata(dirs[i]!.abs, dirs[i]!.stat, false);
    applyMetadata(dstRoot, rootStat, false);
    // Last: after every owner is final (a chown clears security.capability).
    const kept = keepXattrs(srcRoot, dstRoot, fromParent.size ? xattrRels.filter((r) => !fromParent.has(r)) : xattrRels);
    degraded.push(...kept.degraded);
    result.xattrsSeen = kept.seen;
    tracePhase('materialize: xattrs');
    return changed;
  };
  const result: MaterializeResult = { entries, degraded, bytes: total, stats, finish };
  if (!opts.deferFinish) finish();
  result.pending = !finished && (!!links?.size || laterLinks.length > 0);
  return result;
}

/**
 * Link failures a copy works around: the link count limit, another device, a parent
 * file gone, and a parent snapshot reached through a symlink (ELOOP, ENOTDIR: someone
 * swapped a folder or file of `.jvs/snapshots/<parent>`; the file is copied from the
 * worktree instead, so nothing outside the repository is ever linked in).
 */
const LINK_FALLBACK = new Set(['ENOENT', 'EMLINK', 'EXDEV', 'EPERM', 'EACCES', 'ELOOP', 'ENOTDIR']);

/**
 * Hard-links the parent snapshot's file at `rel` to `to` (no addon: the addon's links
 * go through fds of both roots, native/jvs_tree.c link_run). Each component below the
 * parent's root is lstat-ed first: a symlink on the way refuses the link.
 */
function tryLink(parentDir: string, rel: string, to: string): boolean {
  try {
    plainFileBelow(parentDir, rel); // ELOOP (a symlink on the way), EBADMSG (not a file)
    fs.linkSync(fsPath(under(parentDir, rel)), fsPath(to));
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (LINK_FALLBACK.has(code) || code === 'EBADMSG') return false;
    throw err;
  }
}

/**
 * Put one file (not a second member of a user hard-link group) into the new tree and
 * set m.contentHash:
 * - stat proves it unchanged and the parent holds the same content → hard link to the
 *   parent's file (copy engine), no read at all;
 * - stat proves it unchanged otherwise → engine copy without hashing; a source that
 *   changed while being copied is noticed by a second lstat and the copy is hashed;
 * - stat matches the parent's but cannot be trusted (racy, or no recorded state) →
 *   read once to compare; equal → link, else copy;
 * - anything else → copied and hashed in the same read (copyAndHash / clone + hash).
 */
interface Deferred {
  job: ParallelJob;
  dst: string;
  e: TreeEntry;
  m: ManifestEntry;
  /** The hash the stat vouches for (copies of unchanged files, run by copyKnown). */
  trusted?: string;
}

/** A job's source stat before the copy and the metadata the copy must get (plain data: jobs may go to a worker). */
function jobOf(src: string, dst: string, e: TreeEntry, roots?: readonly [string, string]): ParallelJob {
  const st = e.stat;
  return {
    kind: 'copy',
    src,
    dst,
    ...(roots ? { roots } : {}),
    mode: permBits(st),
    pre: [st.ctimeNs.toString(), st.mtimeNs.toString(), st.size.toString(), st.ino.toString()],
    meta: { atimeNs: st.atimeNs, mtimeNs: st.mtimeNs, uid: st.uid, gid: st.gid },
  };
}

/** An unchanged file to hard-link from the parent snapshot (same rel in both trees). */
interface PendingLink {
  rel: string;
  e: TreeEntry;
  m: ManifestEntry;
  /** Set when `m` is a shared recorded entry: its index in the entries, replaced (not mutated) if the link must become a copy. */
  at?: number;
}

/** Returns true when the copy or link was deferred (the caller runs them after the walk). */
function placeFile(src: string, dst: string, e: TreeEntry, m: ManifestEntry, engine: Engine, opts: MaterializeOptions, stats: MaterializeStats, roots: readonly [string, string], queue?: Deferred[], links?: { push(l: PendingLink): void }, knownQueue?: Deferred[], x?: { srcRoot: string; fromParent: Set<string> }): boolean {
  const mode = permBits(e.stat);
  const k = opts.known;
  if (k) {
    const trusted = k.unchanged(e.rel, e.stat)?.contentHash;
    const p = k.parent(e.rel);
    const parentSame = !!p && p.type === 'file' && !!p.contentHash && p.size === m.size && p.mode === mode && p.mtimeNs === e.stat.mtimeNs;
    if (trusted !== undefined) {
      const linkable = k.link && parentSame && p!.contentHash === trusted && k.linkable(e.rel);
      if (linkable && links) {
        m.contentHash = trusted;
        links.push({ rel: e.rel, e, m });
        x?.fromParent.add(e.rel);
        return true;
      }
      if (linkable && tryLink(k.parentDir, e.rel, dst)) {
        m.contentHash = trusted;
        stats.linked++;
        x?.fromParent.add(e.rel);
        return false;
      }
      if (knownQueue) {
        knownQueue.push({ job: jobOf(src, dst, e, roots), dst, e, m, trusted });
        return true;
      }
      copyTrusted(src, dst, e, m, engine, stats, trusted, roots);
      return false;
    }
    if (parentSame) {
      stats.compared++;
      const h = hashFile(src);
      // Same bytes; a link also shares the parent's extended attributes, so those must
      // be equal too (an xattr-only change moves just the ctime, which sent us here).
      if (h === p!.contentHash && k.link && k.linkable(e.rel) && (!x || sameXattrs(x.srcRoot, k.parentDir, e.rel)) && tryLink(k.parentDir, e.rel, dst)) {
        m.contentHash = h;
        stats.linked++;
        x?.fromParent.add(e.rel);
        return false;
      }
    }
  }
  if (opts.hash === false) {
    engine.copyFile(src, dst, mode, false);
    stats.copied++;
    stats.bytesCopied += m.size;
    applyCopyMetadata(dst, permBits(e.stat), e.stat);
    return false;
  }
  const job = jobOf(src, dst, e, roots);
  if (queue) {
    queue.push({ job, dst, e, m });
    return true;
  }
  delete job.meta; // copyHashed alone applies no metadata: finishCopy does
  const r = copyHashed(engine, job);
  m.contentHash = r.hash;
  finishCopy(dst, e, m, stats, r.size);
  return false;
}

/** Copy a file whose content the stat vouches for: read only if it changed while being copied (copyKnown). */
function copyTrusted(src: string, dst: string, e: TreeEntry, m: ManifestEntry, engine: Engine, stats: MaterializeStats, trusted: string, roots: readonly [string, string]): void {
  tookKnown(dst, e, m, stats, copyKnown([jobOf(src, dst, e, roots)], engine)[0]!, trusted);
}

/** A copyKnown outcome into the manifest entry: the vouched-for hash unless the copy had to be hashed. */
function tookKnown(dst: string, e: TreeEntry, m: ManifestEntry, stats: MaterializeStats, r: { size: number; hash?: string; metaApplied?: boolean }, trusted: string): void {
  m.contentHash = r.hash ?? trusted;
  finishCopy(dst, e, m, stats, r.size, !!r.metaApplied);
}

/** errno numbers (as linkWait returns them) to their names. */
const ERRNO_NAMES = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/** Links per background batch: small enough that linking starts early in the walk. */
const LINK_BATCH = 4096;

/**
 * Hard links made by native threads while the caller goes on: full batches start at
 * once on one thread each, the rest on every core at close(); wait() joins them all.
 * A link the filesystem refuses for a reason a copy can work around (link count
 * limit, another device, a parent file gone) becomes a copy — which reads the file
 * again if it changed meanwhile, so wait() returns whether any entry's hash or size
 * may differ from what was recorded; anything else fails.
 */
function linkBatcher(engine: Engine, stats: MaterializeStats, fromRoot: string, srcRoot: string, dstRoot: string, entries: ManifestEntry[], copiedInstead: (rel: string) => void) {
  const n = native()!;
  const started: Array<{ count: number; link(i: number): PendingLink; handle: object }> = [];
  let pending: PendingLink[] = [];
  let size = 0;
  const start = (threads: number) => {
    if (!pending.length) return;
    const rels: string[] = [];
    for (const l of pending) rels.push(l.rel);
    const batch = pending;
    started.push({ count: batch.length, link: (i) => batch[i]!, handle: n.linkStart(fromRoot, dstRoot, rels.join('\0'), batch.length, threads) });
    pending = [];
  };
  return {
    get size() {
      return size;
    },
    push(l: PendingLink) {
      pending.push(l);
      size++;
      if (pending.length >= LINK_BATCH) start(1);
    },
    /** A batch the addon started itself (classify); `link(i)` describes its i-th link when needed. */
    adopt(handle: object, count: number, link: (i: number) => PendingLink) {
      started.push({ count, link, handle });
      size += count;
    },
    close() {
      start(os.availableParallelism());
    },
    wait(): boolean {
      let changed = false;
      let failure: unknown;
      for (const b of started) {
        const errs = n.linkWait(b.handle); // every batch is joined, even after a failure
        if (failure) continue;
        for (let i = 0; i < b.count && !failure; i++) {
          const err = errs[i]!;
          if (err === 0) {
            stats.linked++;
            continue;
          }
          const l = b.link(i);
          const code = ERRNO_NAMES.get(err) ?? `errno ${err}`;
          const dst = under(dstRoot, l.rel);
          if (!LINK_FALLBACK.has(code)) {
            failure = Object.assign(new Error(`${code}: cannot link ${under(fromRoot, l.rel)} to ${dst}`), { code, path: dst });
            break;
          }
          // A shared recorded entry is replaced by a copy of it: the copy may record another hash.
          const m: ManifestEntry = l.at === undefined ? l.m : (entries[l.at] = Object.assign(statRecord(l.e), { contentHash: l.m.contentHash! }));
          const before = `${m.contentHash}:${m.size}`;
          try {
            copyTrusted(under(srcRoot, l.rel), dst, l.e, m, engine, stats, m.contentHash!, [srcRoot, dstRoot]);
            copiedInstead(l.rel);
          } catch (e) {
            failure = e;
            break;
          }
          if (`${m.contentHash}:${m.size}` !== before) changed = true;
        }
      }
      if (failure) throw failure;
      return changed;
    },
  };
}

/** Metadata of a copied file, and its size as copied (the source may have changed size meanwhile). */
function finishCopy(dst: string, e: TreeEntry, m: ManifestEntry, stats: MaterializeStats, size?: number, metaApplied = false): void {
  m.size = size ?? Number(fs.lstatSync(fsPath(dst), { bigint: true }).size);
  if (!metaApplied) applyCopyMetadata(dst, permBits(e.stat), e.stat);
  stats.copied++;
  stats.bytesCopied += m.size;
}


import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import { copyAndHash, hashFile, HashMode, hashThreads, nativeHashMany, PRE_PER_JOB, type HashModeValue } from '../fsutil/fileHash.js';
import type { CopyEngine } from './copyEngine.js';
import type { Engine } from './engine.js';
import { JvsError } from '../errors.js';
import { cloneFailure } from './reflinkEngine.js';
import { applyCopyMetadata } from './metadata.js';
import { fsPath } from '../format/nameBytes.js';

/**
 * Copies that hash what they copy, and plain hashes, on every core, without making the
 * operations asynchronous (they run synchronously under the repository lock).
 *
 * With the native addon (native/jvs_hash.c, `hashMany`) a batch of jobs runs on
 * pthreads started per batch (microseconds) plus the calling thread, which blocks until
 * the batch is done: no per-file JavaScript, reads with pread into a buffer that stays
 * in L2, SHA-256 from OpenSSL. Batches are cut at ~256 MiB or 4096 jobs so progress
 * can be reported and an error stops the work early.
 *
 * Without the addon (JVS_DISABLE_NATIVE=1 or not built): one worker thread and the
 * calling thread take jobs from a shared counter; the caller then blocks
 * (Atomics.wait) until the worker has finished the job it holds. A worker that fails
 * to start costs nothing: the caller simply takes every job.
 *
 * Jobs are file copies that hash what they write (copy engine: FICLONE or read+hash+
 * write; reflink-copy: clone + hash), or plain hashes. A 1 GiB first snapshot or
 * verify is CPU-bound (SHA-256 ~1.3 GB/s per core from the page cache, FICLONE ~40 µs
 * per file on XFS) and gains close to 2x from the second core.
 */
export interface ParallelJob {
  kind: 'copy' | 'hash';
  src: string;
  /** Destination (copy jobs). */
  dst?: string;
  mode?: number;
  /** Source stat before the copy (decimal strings: workers get plain data): ctimeNs, mtimeNs, size, ino. */
  pre?: [string, string, string, string];
  /**
   * Optional: give the copy these times (ns) and, when running as root, this owner
   * (best effort, like applyMetadata), with the exact `mode` kept after a chown. The
   * copy's outcome then says `metaApplied` and the caller need not touch the file
   * again (the addon sets them through the open fd: no extra path lookups).
   */
  meta?: JobMeta;
  /**
   * The folders `src` and `dst` lie in (one tuple shared by the jobs of one tree). The
   * addon then opens both below directory fds of these roots without following any
   * symlink on the way (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so a folder of
   * the source swapped for a symlink after the walk is not read through (ELOOP).
   */
  roots?: readonly [string, string];
}

/** What `meta` carries: a walked stat (EntryStat, fs.BigIntStats) fits as is. */
export interface JobMeta {
  atimeNs: bigint;
  mtimeNs: bigint;
  uid: bigint;
  gid: bigint;
}

export interface CopyOutcome {
  hash: string;
  /** Bytes the destination holds (the source may have changed size while being copied). */
  size: number;
  /** The job's `meta` (times, owner) and mode are on the copy. */
  metaApplied?: boolean;
}

/**
 * Copy one file and return the SHA-256 of what the copy holds, reading as little as
 * possible: a plain copy hashes while copying (one read); a clone (reflink, FICLONE)
 * hashes the *source*, whose pages are usually cached while the clone's are not, and
 * falls back to hashing the clone when an lstat shows the source changed meanwhile.
 */
export function copyHashed(engine: Engine, job: ParallelJob): CopyOutcome {
  const native = nativeCopyMode(engine.name, engine);
  if (native !== undefined && job.kind === 'copy') {
    const r = runNativeBatch([job], native, engine.name, 1);
    if (native === HashMode.copy) (engine as CopyEngine).noteClone(!r.cloneRefused);
    return r.outcomes[0]!;
  }
  const out = copyHashedJs(engine, job);
  if (job.meta && job.kind === 'copy') {
    applyCopyMetadata(job.dst!, job.mode ?? 0o644, job.meta);
    out.metaApplied = true;
  }
  return out;
}

function copyHashedJs(engine: Engine, job: ParallelJob): CopyOutcome {
  const src = job.src;
  const dst = job.dst!;
  const mode = job.mode ?? 0o644;
  if (engine.name === 'copy' && (engine as CopyEngine).clonesFiles === false) return copyAndHash(src, dst, mode);
  if (engine.name !== 'copy' && engine.name !== 'reflink-copy') {
    const hash = engine.copyFile(src, dst, mode, true);
    return { hash, size: Number(fs.lstatSync(fsPath(dst), { bigint: true }).size) };
  }
  engine.copyFile(src, dst, mode, false);
  const pre = job.pre;
  if (pre) {
    const h = hashFile(src);
    if (unchangedSince(src, pre)) return { hash: h, size: Number(pre[2]) };
  }
  return { hash: hashFile(dst), size: Number(fs.lstatSync(fsPath(dst), { bigint: true }).size) };
}

/** Whether `src` still has the stat its job recorded before the copy (ctime, mtime, size, inode). */
function unchangedSince(src: string, pre: ParallelJob['pre']): boolean {
  if (!pre) return false;
  const a = fs.lstatSync(fsPath(src), { bigint: true });
  return a.ctimeNs.toString() === pre[0] && a.mtimeNs.toString() === pre[1] && a.size.toString() === pre[2] && a.ino.toString() === pre[3];
}


/** Below this many bytes a worker's start-up (~30 ms) is not worth it (native threads start in microseconds). */
export const PARALLEL_MIN_BYTES = 64 << 20;

/**
 * Whether a caller should queue its jobs for runParallel. With the addon any batch is
 * worth it (no start-up, no per-file JavaScript); the worker-thread fallback needs a
 * large tree to pay for its start-up.
 */
export function worthParallel(jobs: number, bytes: number): boolean {
  if (process.env.JVS_NO_WORKERS === '1') return false;
  if (nativeHashMany()) return jobs >= 8;
  return jobs >= 8 && bytes >= PARALLEL_MIN_BYTES && os.availableParallelism() > 1;
}

/** The addon's mode for copies by `engineName`, or undefined when the addon cannot do them. */
function nativeCopyMode(engineName: string, engine?: Engine): HashModeValue | undefined {
  if (!nativeHashMany()) return undefined;
  if (engineName === 'reflink-copy') return HashMode.reflink;
  if (engineName !== 'copy') return undefined;
  return engine && (engine as CopyEngine).clonesFiles === false ? HashMode.copyNoClone : HashMode.copy;
}

/** The flag in the mode slot of the addon's `pre` asking for `meta` (native/jvs_hash.c). */
const META = 1n << 20n;
/** hashMany mode flag: the caller knows the hashes (see copyKnown). */
const KNOWN = 8;

/** Native batches end after this many bytes or jobs (progress, early stop on errors). */
const BATCH_BYTES = 256 << 20;
const BATCH_JOBS = 4096;

/**
 * jobs[start..end) through the addon on `threads` threads. Sources' walked stats go
 * along (the racy-source rule: a clone's hash is taken from its source only when the
 * source's lstat after hashing still equals them); a job without `pre` hashes its clone.
 */
function runNativeBatch(jobs: readonly ParallelJob[], mode: HashModeValue, engineName: string, threads: number, start = 0, end = jobs.length, known = false): { outcomes: CopyOutcome[]; cloneRefused: boolean; byOtherThreads: number } {
  const many = nativeHashMany()!;
  const n = end - start;
  const roots = sharedRoots(jobs, start, end);
  const parts = new Array<string>(mode === HashMode.hash ? n : 2 * n);
  const pre = mode === HashMode.hash ? null : new BigInt64Array(PRE_PER_JOB * n);
  for (let k = 0; k < n; k++) {
    const job = jobs[start + k]!;
    const src = roots ? job.src.slice(rootPrefix(roots[0]).length) : job.src;
    if (pre === null) {
      parts[k] = src;
      continue;
    }
    parts[2 * k] = src;
    parts[2 * k + 1] = roots ? job.dst!.slice(rootPrefix(roots[1]).length) : job.dst!;
    const p = job.pre;
    const at = PRE_PER_JOB * k;
    if (p) {
      pre[at] = BigInt(p[0]);
      pre[at + 1] = BigInt(p[1]);
      pre[at + 2] = BigInt(p[2]);
      pre[at + 3] = BigInt(p[3]);
    }
    const meta = job.meta;
    pre[at + 4] = BigInt((job.mode ?? 0o644) & 0o7777) | (meta ? META : 0n);
    if (meta) {
      pre[at + 5] = meta.atimeNs;
      pre[at + 6] = meta.mtimeNs;
      pre[at + 7] = meta.uid;
      pre[at + 8] = meta.gid;
    }
  }
  parts.push('');
  let r;
  try {
    r = many(parts.join('\0'), n, known ? mode | KNOWN : mode, pre, threads, roots ? [roots[0], roots[1]] : null);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { index?: number };
    if (engineName === 'reflink-copy' && err.syscall === 'ioctl_ficlone') throw cloneFailure(jobs[start + (err.index ?? 0)]!.src, e);
    throw e;
  }
  const outcomes = new Array<CopyOutcome>(n);
  for (let k = 0; k < n; k++) {
    outcomes[k] = { hash: known && r.steady[k] ? '' : r.hashes.slice(64 * k, 64 * k + 64), size: r.sizes[k]! };
    if (mode !== HashMode.hash && jobs[start + k]!.meta) outcomes[k]!.metaApplied = true;
  }
  return { outcomes, cloneRefused: r.cloneRefused, byOtherThreads: r.byOtherThreads };
}

const rootPrefix = (root: string) => (root.endsWith('/') ? root : `${root}/`);

/** The roots every job of jobs[start..end) names and lies below, or undefined (absolute paths then). */
function sharedRoots(jobs: readonly ParallelJob[], start: number, end: number): readonly [string, string] | undefined {
  const roots = jobs[start]?.roots;
  if (!roots) return undefined;
  const [s, d] = [rootPrefix(roots[0]), rootPrefix(roots[1])];
  for (let k = start; k < end; k++) {
    const j = jobs[k]!;
    if (j.roots !== roots || !j.src.startsWith(s) || (j.dst !== undefined && !j.dst.startsWith(d))) return undefined;
  }
  return roots;
}

function runNative(jobs: readonly ParallelJob[], mode: HashModeValue, engineName: string, onDone?: (outcome: CopyOutcome, index: number) => void): CopyOutcome[] & { byWorker?: number } {
  const out = new Array<CopyOutcome>(jobs.length);
  const threads = hashThreads();
  let byWorker = 0;
  for (let start = 0; start < jobs.length; ) {
    let end = start;
    let bytes = 0;
    while (end < jobs.length && end - start < BATCH_JOBS && bytes < BATCH_BYTES) bytes += Number(jobs[end++]!.pre?.[2] ?? 0);
    const r = runNativeBatch(jobs, mode, engineName, threads, start, end);
    byWorker += r.byOtherThreads;
    for (let k = 0; k < r.outcomes.length; k++) {
      out[start + k] = r.outcomes[k]!;
      onDone?.(r.outcomes[k]!, start + k);
    }
    start = end;
  }
  return Object.assign(out, { byWorker });
}

const HASH = 32;

/**
 * Copies of files whose content hash the caller already knows (a stat proved the source
 * unchanged, e.g. trusted files of an incremental reflink snapshot): FICLONE (or the
 * copy engine's copy) on every core, reading nothing when the source's lstat after the
 * clone still equals the job's `pre`. Per job: the size, `hash` only when it had to be
 * taken (the source changed, so the copy's own bytes were hashed; or the copy engine
 * copied instead of cloning), and `metaApplied` as for runParallel. Without the addon
 * the same is done here, one file after another.
 */
export function copyKnown(jobs: readonly ParallelJob[], engine: Engine): Array<{ size: number; hash?: string; metaApplied?: boolean }> {
  const mode = nativeCopyMode(engine.name, engine);
  const out: Array<{ size: number; hash?: string; metaApplied?: boolean }> = new Array(jobs.length);
  if (mode !== undefined) {
    const threads = hashThreads();
    for (let start = 0; start < jobs.length; start += BATCH_JOBS) {
      const end = Math.min(jobs.length, start + BATCH_JOBS);
      const r = runNativeBatch(jobs, mode, engine.name, threads, start, end, true);
      if (mode === HashMode.copy) (engine as CopyEngine).noteClone(!r.cloneRefused);
      r.outcomes.forEach((o, k) => (out[start + k] = o.hash === '' ? { size: o.size, ...(o.metaApplied ? { metaApplied: true } : {}) } : o));
    }
    return out;
  }
  jobs.forEach((job, i) => {
    const dst = job.dst!;
    const mode = job.mode ?? 0o644;
    engine.copyFile(job.src, dst, mode, false);
    const o: { size: number; hash?: string; metaApplied?: boolean } = unchangedSince(job.src, job.pre) ? { size: Number(job.pre![2]) } : { hash: hashFile(dst), size: Number(fs.lstatSync(fsPath(dst), { bigint: true }).size) };
    if (job.meta) {
      applyCopyMetadata(dst, mode, job.meta);
      o.metaApplied = true;
    }
    out[i] = o;
  });
  return out;
}

/**
 * Run `jobs` on every core; returns the hex SHA-256 and size per job (size 0 for hash
 * jobs). With the addon, copy jobs of the copy/reflink-copy engines and hash jobs run
 * natively and `runHere` is not called; otherwise this thread runs `runHere` and a
 * worker thread the same engine. `onDone` (optional) hears of each finished job, in
 * batches (progress). Throws the first job error (after all running jobs stopped).
 */
export function runParallel(jobs: ParallelJob[], engine: string, runHere: (job: ParallelJob) => CopyOutcome, onDone?: (outcome: CopyOutcome, index: number) => void): CopyOutcome[] & { byWorker?: number } {
  const allHash = jobs.every((j) => j.kind === 'hash');
  const mode = allHash ? (nativeHashMany() ? HashMode.hash : undefined) : jobs.every((j) => j.kind === 'copy') ? nativeCopyMode(engine) : undefined;
  if (mode !== undefined) return runNative(jobs, mode, engine, onDone);
  const result = runWithWorker(jobs, engine, runHere);
  if (onDone) result.forEach((o, i) => onDone(o, i));
  return result;
}

function runWithWorker(jobs: ParallelJob[], engine: string, runHere: (job: ParallelJob) => CopyOutcome): CopyOutcome[] & { byWorker?: number } {
  // Loaded here, the only place that starts a worker (~1.2 ms of start-up otherwise; with the addon, copies run on its threads).
  const { MessageChannel, receiveMessageOnPort, Worker } = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');
  const n = jobs.length;
  const ctl = new Int32Array(new SharedArrayBuffer(8)); // [0] next job, [1] jobs in flight in the worker
  const hashes = new Uint8Array(new SharedArrayBuffer(n * HASH));
  const sizes = new Float64Array(new SharedArrayBuffer(n * 8));
  const fromWorker = new Uint8Array(new SharedArrayBuffer(n)); // 1: worker did it, 2: worker failed
  const { port1, port2 } = new MessageChannel();
  let worker: Worker | undefined;
  try {
    worker = new Worker(new URL('../engines/parallelCopyWorker.js', import.meta.url), {
      workerData: { jobs, engine, ctl: ctl.buffer, hashes: hashes.buffer, sizes: sizes.buffer, fromWorker: fromWorker.buffer, port: port2 },
      transferList: [port2],
    });
    worker.unref();
    worker.on('error', () => { /* reported through fromWorker / never started: this thread covers */ });
  } catch {
    worker = undefined;
  }
  const out = new Array<CopyOutcome>(n);
  let failure: unknown;
  for (;;) {
    const i = Atomics.add(ctl, 0, 1);
    if (i >= n) break;
    try {
      out[i] = runHere(jobs[i]!);
    } catch (e) {
      failure ??= e;
      Atomics.store(ctl, 0, n); // stop handing out work
      break;
    }
  }
  // Wait for the job the worker may still hold.
  while (Atomics.load(ctl, 1) !== 0) Atomics.wait(ctl, 1, Atomics.load(ctl, 1), 50);
  void worker?.terminate();
  for (let i = 0; i < n; i++) {
    if (fromWorker[i] === 1) out[i] = { hash: Buffer.from(hashes.buffer, i * HASH, HASH).toString('hex'), size: sizes[i]!, ...(jobs[i]!.meta && jobs[i]!.kind === 'copy' ? { metaApplied: true } : {}) };
  }
  let msg;
  while ((msg = receiveMessageOnPort(port1))) {
    const m = msg.message as { error?: { message: string; code?: string } };
    if (m.error && failure === undefined) failure = Object.assign(new Error(m.error.message), { code: m.error.code });
  }
  port1.close();
  if (failure !== undefined) throw failure;
  for (let i = 0; i < n; i++) if (out[i] === undefined) throw new Error(`parallel copy: job ${i} (${jobs[i]!.src}) was not done`);
  return Object.assign(out, { byWorker: fromWorker.reduce((k, v) => k + (v === 1 ? 1 : 0), 0) });
}

/** hashMany mode flag: check each copy against `expected` (see copyVerified). */
const VERIFY = 16;

/** A file a restore takes out of a snapshot: where, and what its manifest says it holds. */
export interface VerifiedJob {
  /** Path below the snapshot root. */
  rel: string;
  /** Path of the new file below the stage root (must not exist). */
  dst: string;
  /** Manifest: permission bits, size, mtime and content hash. */
  mode: number;
  size: number;
  mtimeNs: bigint;
  hash: string;
}

/** The error a refused copy of a restore turns into (hashMany's or the fallback's). */
function verifiedFailure(e: unknown, job: VerifiedJob | undefined, srcRoot: string, engineName: string): unknown {
  const err = e as NodeJS.ErrnoException & { index?: number };
  const rel = job ? JSON.stringify(job.rel) : 'a file';
  if (err.code === 'EBADMSG') {
    return new JvsError('E_PAYLOAD_HASH_MISMATCH', `snapshot file ${rel} does not hold what the snapshot recorded (its bytes differ from the manifest's hash); nothing in the worktree was changed`, {
      hint: '`jvs verify --all` lists the damaged snapshots; restore another snapshot',
    });
  }
  if (err.code === 'ELOOP' || err.code === 'EXDEV') {
    return new JvsError('E_PATH_ESCAPE', `snapshot file ${rel} is reached through a symbolic link inside ${srcRoot}; restore never follows one; nothing in the worktree was changed`, {
      hint: '`jvs verify --all` lists the damaged snapshots; restore another snapshot',
    });
  }
  if (engineName === 'reflink-copy' && err.syscall === 'ioctl_ficlone' && job) return cloneFailure(`${srcRoot}/${job.rel}`, e);
  return e;
}

/** Fallback check of the addon's open_beneath: no component of `rel` below `root` is a symlink, and it names a regular file. */
export function plainFileBelow(root: string, rel: string): fs.BigIntStats {
  let at = root;
  const parts = rel.split('/');
  for (let i = 0; i < parts.length; i++) {
    at = `${at}/${parts[i]}`;
    const st = fs.lstatSync(fsPath(at), { bigint: true });
    if (st.isSymbolicLink()) throw Object.assign(new Error(`ELOOP: ${at}`), { code: 'ELOOP' });
    if (i < parts.length - 1 ? !st.isDirectory() : !st.isFile()) throw Object.assign(new Error(`EBADMSG: ${at}`), { code: 'EBADMSG' });
    if (i === parts.length - 1) return st;
  }
  throw Object.assign(new Error(`EXDEV: ${rel}`), { code: 'EXDEV' });
}

/**
 * A restore's copies out of snapshot `srcRoot` into `stageRoot` (a private folder of
 * the destination), each checked against the manifest before any is used: opened below
 * the roots' fds without following a symlink (native/jvs_hash.c open_beneath); a clone
 * of a file whose stat still shows the manifest's size and mtime is trusted unread,
 * anything else is hashed while copied and must give the manifest's hash. Mode, mtime
 * (the manifest's), owner and atime (the snapshot file's) are set on each copy.
 * Throws E_PAYLOAD_HASH_MISMATCH or E_PATH_ESCAPE (the stage is the caller's to remove).
 * Returns how many copies had to be read.
 */
export function copyVerified(jobs: readonly VerifiedJob[], engine: Engine, srcRoot: string, stageRoot: string, onBytes?: (bytes: number) => void): number {
  const mode = nativeCopyMode(engine.name, engine);
  let read = 0;
  if (mode !== undefined) {
    const many = nativeHashMany()!;
    const threads = hashThreads();
    for (let start = 0; start < jobs.length; ) {
      let end = start;
      let bytes = 0;
      while (end < jobs.length && end - start < BATCH_JOBS && bytes < BATCH_BYTES) bytes += jobs[end++]!.size;
      const n = end - start;
      const parts: string[] = [];
      const pre = new BigInt64Array(PRE_PER_JOB * n);
      const expected = Buffer.allocUnsafe(32 * n);
      for (let k = 0; k < n; k++) {
        const j = jobs[start + k]!;
        parts.push(j.rel, j.dst);
        const at = PRE_PER_JOB * k;
        pre[at + 1] = j.mtimeNs;
        pre[at + 2] = BigInt(j.size);
        pre[at + 4] = BigInt(j.mode & 0o7777) | META;
        pre[at + 6] = j.mtimeNs;
        if (expected.write(j.hash, 32 * k, 'hex') !== 32) throw new JvsError('E_PAYLOAD_HASH_MISMATCH', `snapshot file ${JSON.stringify(j.rel)} has no valid hash in its manifest`, { hint: 'run `jvs verify --all`' });
      }
      parts.push('');
      let r;
      try {
        r = many(parts.join('\0'), n, mode | VERIFY, pre, threads, [srcRoot, stageRoot], expected);
      } catch (e) {
        throw verifiedFailure(e, jobs[start + ((e as { index?: number }).index ?? 0)], srcRoot, engine.name);
      }
      if (mode === HashMode.copy) (engine as CopyEngine).noteClone(!r.cloneRefused);
      for (let k = 0; k < n; k++) if (!r.steady[k]) read++;
      onBytes?.(bytes);
      start = end;
    }
    return read;
  }
  for (const j of jobs) {
    const src = `${srcRoot}/${j.rel}`;
    const dst = `${stageRoot}/${j.dst}`;
    try {
      const st = plainFileBelow(srcRoot, j.rel);
      if (engine.copyFile(src, dst, j.mode, true) !== j.hash) throw Object.assign(new Error(`EBADMSG: ${src}`), { code: 'EBADMSG' });
      applyCopyMetadata(dst, j.mode, { uid: st.uid, gid: st.gid, atimeNs: st.atimeNs, mtimeNs: j.mtimeNs });
    } catch (e) {
      throw verifiedFailure(e, j, srcRoot, engine.name);
    }
    read++;
    onBytes?.(j.size);
  }
  return read;
}

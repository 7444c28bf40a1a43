import fs from 'node:fs';
import os from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { copyAndHash, hashFile } from '../fsutil/fileHash.js';
import type { CopyEngine } from './copyEngine.js';
import type { Engine } from './engine.js';

/**
 * Both cores for large trees, without making the operations asynchronous (they run
 * under the repository lock, synchronously): one worker thread and the calling thread
 * take jobs from a shared counter; the caller then blocks (Atomics.wait) until the
 * worker has finished the job it holds. A worker that fails to start costs nothing:
 * the caller simply takes every job.
 *
 * Jobs are file copies that hash what they write (copy engine: FICLONE or read+hash+
 * write with a reused 1 MiB buffer; reflink-copy: clone + hash the clone), or plain
 * hashes. SHA-256 through OpenSSL runs ~1.5 GB/s per core here, so a 1 GiB first
 * snapshot or verify is CPU-bound and gains close to 2× from the second core.
 */
export interface ParallelJob {
  kind: 'copy' | 'hash';
  src: string;
  /** Destination (copy jobs). */
  dst?: string;
  mode?: number;
  /** Source stat before the copy (decimal strings: workers get plain data): ctimeNs, mtimeNs, size, ino. */
  pre?: [string, string, string, string];
}

export interface CopyOutcome {
  hash: string;
  /** Bytes the destination holds (the source may have changed size while being copied). */
  size: number;
}

/**
 * Copy one file and return the SHA-256 of what the copy holds, reading as little as
 * possible: a plain copy hashes while copying (one read); a clone (reflink, FICLONE)
 * hashes the *source*, whose pages are usually cached while the clone's are not, and
 * falls back to hashing the clone when an lstat shows the source changed meanwhile.
 */
export function copyHashed(engine: Engine, job: ParallelJob): CopyOutcome {
  const src = job.src;
  const dst = job.dst!;
  const mode = job.mode ?? 0o644;
  if (engine.name === 'copy' && (engine as CopyEngine).clonesFiles === false) return copyAndHash(src, dst, mode);
  if (engine.name !== 'copy' && engine.name !== 'reflink-copy') {
    const hash = engine.copyFile(src, dst, mode, true);
    return { hash, size: Number(fs.lstatSync(dst, { bigint: true }).size) };
  }
  engine.copyFile(src, dst, mode, false);
  const pre = job.pre;
  if (pre) {
    const h = hashFile(src);
    const a = fs.lstatSync(src, { bigint: true });
    if (a.ctimeNs.toString() === pre[0] && a.mtimeNs.toString() === pre[1] && a.size.toString() === pre[2] && a.ino.toString() === pre[3]) return { hash: h, size: Number(pre[2]) };
  }
  return { hash: hashFile(dst), size: Number(fs.lstatSync(dst, { bigint: true }).size) };
}


/** Below this many bytes a worker's start-up (~30 ms) is not worth it. */
export const PARALLEL_MIN_BYTES = 64 << 20;

export function worthParallel(jobs: number, bytes: number): boolean {
  return jobs >= 8 && bytes >= PARALLEL_MIN_BYTES && os.availableParallelism() > 1 && process.env.JVS_NO_WORKERS !== '1';
}

const HASH = 32;

/**
 * Run `jobs`, this thread with `runHere` and a worker thread with the same engine;
 * returns the hex SHA-256 per job. Throws the first job error (after all running jobs stopped).
 */
export function runParallel(jobs: ParallelJob[], engine: string, runHere: (job: ParallelJob) => CopyOutcome): CopyOutcome[] & { byWorker?: number } {
  const n = jobs.length;
  const ctl = new Int32Array(new SharedArrayBuffer(8)); // [0] next job, [1] jobs in flight in the worker
  const hashes = new Uint8Array(new SharedArrayBuffer(n * HASH));
  const sizes = new Float64Array(new SharedArrayBuffer(n * 8));
  const fromWorker = new Uint8Array(new SharedArrayBuffer(n)); // 1: worker did it, 2: worker failed
  const { port1, port2 } = new MessageChannel();
  let worker: Worker | undefined;
  try {
    worker = new Worker(new URL('./parallelCopyWorker.js', import.meta.url), {
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
    if (fromWorker[i] === 1) out[i] = { hash: Buffer.from(hashes.buffer, i * HASH, HASH).toString('hex'), size: sizes[i]! };
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

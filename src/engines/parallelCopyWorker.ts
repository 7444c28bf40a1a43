import { workerData, type MessagePort } from 'node:worker_threads';
import { hashFile } from '../fsutil/fileHash.js';
import { copyHashed } from './parallelCopy.js';
import { CopyEngine } from './copyEngine.js';
import type { Engine } from './engine.js';
import type { ParallelJob } from './parallelCopy.js';
import { ReflinkEngine } from './reflinkEngine.js';

/** The worker side of parallelCopy.ts: take jobs from the shared counter until none are left. */
const d = workerData as { jobs: ParallelJob[]; engine: string; ctl: SharedArrayBuffer; hashes: SharedArrayBuffer; sizes: SharedArrayBuffer; fromWorker: SharedArrayBuffer; port: MessagePort };
const ctl = new Int32Array(d.ctl);
const hashes = Buffer.from(d.hashes);
const sizes = new Float64Array(d.sizes);
const fromWorker = new Uint8Array(d.fromWorker);
const engine: Engine = d.engine === 'reflink-copy' ? new ReflinkEngine() : new CopyEngine();
const n = d.jobs.length;

for (;;) {
  Atomics.add(ctl, 1, 1); // in flight before claiming, so the caller never misses a held job
  const i = Atomics.add(ctl, 0, 1);
  if (i >= n) {
    Atomics.sub(ctl, 1, 1);
    Atomics.notify(ctl, 1);
    break;
  }
  const job = d.jobs[i]!;
  try {
    const r = job.kind === 'hash' ? { hash: hashFile(job.src), size: 0 } : copyHashed(engine, job);
    hashes.write(r.hash, i * 32, 32, 'hex');
    sizes[i] = r.size;
    fromWorker[i] = 1;
  } catch (e) {
    fromWorker[i] = 2;
    Atomics.store(ctl, 0, n);
    d.port.postMessage({ error: { message: (e as Error)?.message ?? String(e), code: (e as NodeJS.ErrnoException)?.code } });
  } finally {
    Atomics.sub(ctl, 1, 1);
    Atomics.notify(ctl, 1);
  }
}
d.port.close();

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JvsError } from '../../src/errors.js';
import { CopyEngine } from '../../src/engines/copyEngine.js';
import { copyHashed, copyKnown, runParallel, type CopyOutcome, type ParallelJob } from '../../src/engines/parallelCopy.js';
import { ReflinkEngine } from '../../src/engines/reflinkEngine.js';
import { canClone, extentsShared, type LoopFs, loopFsMissing, mountLoopFs } from '../helpers/loopfs.js';
import { itWith } from '../helpers/prereq.js';
import { tmpDir } from '../helpers/tmp.js';

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** `n` source files of varied sizes in `dir`/src and copy jobs into `dir`/dst (created). */
function makeJobs(dir: string, n: number, maxSize: number): { jobs: ParallelJob[]; contents: Buffer[] } {
  fs.mkdirSync(path.join(dir, 'src'));
  fs.mkdirSync(path.join(dir, 'dst'));
  const jobs: ParallelJob[] = [];
  const contents: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const b = crypto.randomBytes(1 + ((i * 104_729) % maxSize));
    const src = path.join(dir, 'src', `f${i}`);
    fs.writeFileSync(src, b, { mode: i % 2 ? 0o640 : 0o755 });
    const st = fs.lstatSync(src, { bigint: true });
    jobs.push({ kind: 'copy', src, dst: path.join(dir, 'dst', `f${i}`), mode: Number(st.mode & 0o7777n), pre: [st.ctimeNs.toString(), st.mtimeNs.toString(), st.size.toString(), st.ino.toString()] });
    contents.push(b);
  }
  return { jobs, contents };
}

function expectCopies(jobs: ParallelJob[], contents: Buffer[], out: CopyOutcome[]): void {
  expect(out.map((o) => o.hash)).toEqual(contents.map(sha));
  expect(out.map((o) => o.size)).toEqual(contents.map((b) => b.length));
  jobs.forEach((j, i) => {
    expect(fs.readFileSync(j.dst!).equals(contents[i]!)).toBe(true);
    expect(fs.statSync(j.dst!).mode & 0o7777).toBe(j.mode);
  });
}

/**
 * A process that keeps rewriting `file` in place (same inode) with two different
 * contents, so a copy and a later read of the source can see different bytes.
 */
function scribbler(file: string): ChildProcess {
  const script = `const fs = require('fs'); const f = process.argv[1];
    const a = Buffer.alloc(1 << 20, 97), b = Buffer.alloc(1 << 20, 98);
    for (let i = 0; ; i++) { const fd = fs.openSync(f, 'r+'); fs.writeSync(fd, i % 2 ? a : b, 0, a.length, 0); fs.closeSync(fd); }`;
  return spawn(process.execPath, ['-e', script, file], { stdio: 'ignore' });
}

/**
 * Copies `src` again and again while a scribbler writes to it; each outcome must be the
 * hash of what the copy holds. Returns how many copies saw a source that changed.
 */
async function copyWhileWritten(dir: string, copy: (job: ParallelJob) => CopyOutcome, rounds: number): Promise<number> {
  const src = path.join(dir, 'hot');
  fs.writeFileSync(src, Buffer.alloc(1 << 20, 97));
  const child = scribbler(src);
  let raced = 0;
  try {
    // Copy only once the scribbler is writing (its first write puts b's where a's were),
    // not after a fixed wait a slow start of node could outlast.
    const first = Buffer.alloc(1);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const fd = fs.openSync(src, 'r');
      fs.readSync(fd, first, 0, 1, 0);
      fs.closeSync(fd);
      if (first[0] === 98) break;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('the scribbler never wrote');
      await new Promise((r) => setTimeout(r, 10));
    }
    for (let i = 0; i < rounds; i++) {
      const st = fs.lstatSync(src, { bigint: true });
      const job: ParallelJob = { kind: 'copy', src, dst: path.join(dir, `hot.${i}`), mode: 0o644, pre: [st.ctimeNs.toString(), st.mtimeNs.toString(), st.size.toString(), st.ino.toString()] };
      const out = copy(job);
      const held = fs.readFileSync(job.dst!);
      expect(out.hash, `round ${i}`).toBe(sha(held));
      expect(out.size).toBe(held.length);
      if (sha(held) !== sha(fs.readFileSync(src))) raced++;
      fs.rmSync(job.dst!);
    }
  } finally {
    child.kill('SIGKILL');
  }
  return raced;
}

describe('parallel copies with hashes (engines/parallelCopy.ts)', () => {
  it('copy engine: a batch of copies holds the exact bytes and modes, and each hash is its own file’s', () => {
    const dir = tmpDir();
    const { jobs, contents } = makeJobs(dir, 60, 700_000);
    const engine = new CopyEngine();
    const out = runParallel(jobs, 'copy', (job) => copyHashed(engine, job));
    expectCopies(jobs, contents, out);
  });

  it('copy engine: a failing job (source gone) is an errno error, not a hash', () => {
    const dir = tmpDir();
    const { jobs } = makeJobs(dir, 20, 10_000);
    fs.rmSync(jobs[7]!.src);
    const engine = new CopyEngine();
    expect(() => runParallel(jobs, 'copy', (job) => copyHashed(engine, job))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('copy engine: the hash is of the bytes the copy holds, even while the source is being written', async () => {
    const dir = tmpDir();
    const engine = new CopyEngine();
    await copyWhileWritten(dir, (job) => copyHashed(engine, job), 60);
  });

  it('a job with meta gets the walked times (ns), owner (as root) and exact mode, set-id bits surviving the chown', () => {
    const dir = tmpDir();
    const { jobs, contents } = makeJobs(dir, 12, 100_000);
    const root = process.getuid?.() === 0;
    const withMeta = jobs.map((j, i) => ({
      ...j,
      mode: i % 3 === 0 ? 0o4755 : j.mode,
      meta: { atimeNs: 1_600_000_000_123_456_789n + BigInt(i), mtimeNs: 1_500_000_000_987_654_321n + BigInt(i), uid: root ? 1234n : BigInt(process.getuid?.() ?? 0), gid: root ? 5678n : BigInt(process.getgid?.() ?? 0) },
    }));
    const engine = new CopyEngine();
    const out = [copyHashed(engine, withMeta[0]!), ...runParallel(withMeta.slice(1), 'copy', (job) => copyHashed(engine, job))];
    expect(out.map((o) => o.hash)).toEqual(contents.map(sha));
    withMeta.forEach((j, i) => {
      expect(out[i]!.metaApplied).toBe(true);
      const st = fs.lstatSync(j.dst!, { bigint: true });
      expect(st.mtimeNs).toBe(j.meta.mtimeNs);
      expect(st.atimeNs).toBe(j.meta.atimeNs);
      expect(Number(st.mode & 0o7777n)).toBe(j.mode);
      expect(st.uid).toBe(j.meta.uid);
      expect(st.gid).toBe(j.meta.gid);
    });
    // Without meta nothing is promised beyond the mode.
    const plain = makeJobs(tmpDir(), 1, 10).jobs[0]!;
    expect(copyHashed(engine, plain).metaApplied).toBeUndefined();
  });

  it('without the addon (JVS_DISABLE_NATIVE=1, worker-thread fallback) copies, hashes and meta are the same', () => {
    const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/engines/parallelCopy.js');
    if (!fs.existsSync(dist)) throw new Error('dist/ not built: run `npm run build` first');
    const dir = tmpDir();
    const { jobs, contents } = makeJobs(dir, 30, 3 << 20); // > 64 MiB is not needed: runParallel is called directly
    // Whole seconds: without the addon times are set as doubles (sub-microsecond, not ns).
    const withMeta = jobs.map((j, i) => ({ ...j, meta: { atimeNs: (1_700_000_000n + BigInt(i)) * 1_000_000_000n, mtimeNs: (1_600_000_000n + BigInt(i)) * 1_000_000_000n, uid: BigInt(process.getuid?.() ?? 0), gid: BigInt(process.getgid?.() ?? 0) } }));
    const script = `
      const { runParallel, copyHashed } = await import(${JSON.stringify(dist)});
      const { CopyEngine } = await import(${JSON.stringify(path.join(path.dirname(dist), 'copyEngine.js'))});
      const jobs = JSON.parse(process.argv[1], (k, v) => (typeof v === 'string' && /^n[0-9]+$/.test(v) ? BigInt(v.slice(1)) : v));
      const engine = new CopyEngine();
      const out = runParallel(jobs, 'copy', (job) => copyHashed(engine, job));
      process.stdout.write(JSON.stringify({ out, byWorker: out.byWorker }));`;
    const arg = JSON.stringify(withMeta, (_k, v) => (typeof v === 'bigint' ? `n${v}` : v));
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, arg], { encoding: 'utf8', env: { ...process.env, JVS_DISABLE_NATIVE: '1' } });
    expect(r.stderr).toBe('');
    const { out } = JSON.parse(r.stdout) as { out: CopyOutcome[] };
    expectCopies(jobs, contents, out);
    withMeta.forEach((j, i) => {
      expect(out[i]!.metaApplied).toBe(true);
      expect(fs.lstatSync(j.dst!, { bigint: true }).mtimeNs).toBe(j.meta.mtimeNs);
    });
  });

  it('copyKnown with the copy engine: the copies hold the bytes; a hash is given exactly when it had to be taken', () => {
    const dir = tmpDir();
    const { jobs, contents } = makeJobs(dir, 20, 300_000);
    const engine = new CopyEngine();
    const out = copyKnown(jobs, engine);
    expectCopies(jobs, contents, out.map((o, i) => ({ hash: o.hash ?? sha(contents[i]!), size: o.size })));
    // Where FICLONE is refused the copy engine copies, reading (and so hashing) the bytes.
    if (!canClone(dir)) expect(out.map((o) => o.hash)).toEqual(contents.map(sha));
  });

  it('copyKnown without the addon (JVS_DISABLE_NATIVE=1): steady sources give no hash, a changed one gives the copy’s hash', () => {
    const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/engines/parallelCopy.js');
    if (!fs.existsSync(dist)) throw new Error('dist/ not built: run `npm run build` first');
    const dir = tmpDir();
    const { jobs, contents } = makeJobs(dir, 6, 100_000);
    jobs[2]!.pre![0] = '1'; // a stale walk: the source "changed" since
    const script = `
      const { copyKnown } = await import(${JSON.stringify(dist)});
      const { CopyEngine } = await import(${JSON.stringify(path.join(path.dirname(dist), 'copyEngine.js'))});
      process.stdout.write(JSON.stringify(copyKnown(JSON.parse(process.argv[1]), new CopyEngine())));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(jobs)], { encoding: 'utf8', env: { ...process.env, JVS_DISABLE_NATIVE: '1' } });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as Array<{ size: number; hash?: string }>;
    expect(out.map((o) => o.size)).toEqual(contents.map((b) => b.length));
    expect(out.map((o) => o.hash)).toEqual(contents.map((b, i) => (i === 2 ? sha(b) : undefined)));
    jobs.forEach((j, i) => expect(fs.readFileSync(j.dst!).equals(contents[i]!)).toBe(true));
  });

  it('reflink-copy where clones are refused is E_ENGINE_UNAVAILABLE, not a silent copy', () => {
    const dir = tmpDir();
    if (canClone(dir)) return; // this temp dir clones (XFS/btrfs): covered by the XFS tests below
    const { jobs } = makeJobs(dir, 10, 10_000);
    const engine = new ReflinkEngine();
    let err: unknown;
    try {
      runParallel(jobs, 'reflink-copy', (job) => copyHashed(engine, job));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JvsError);
    expect((err as JvsError).code).toBe('E_ENGINE_UNAVAILABLE');
    expect(() => copyHashed(engine, { ...jobs[0]!, dst: path.join(dir, 'one') })).toThrow(expect.objectContaining({ code: 'E_ENGINE_UNAVAILABLE' }));
  });
});

describe('parallel clones on a real XFS loop mount (mkfs.xfs -m reflink=1)', () => {
  const missing = loopFsMissing('xfs');
  let xfs: LoopFs | undefined;
  beforeAll(() => {
    if (!missing) xfs = mountLoopFs('xfs', 512);
  });
  afterAll(() => xfs?.unmount());

  itWith('XFS loop mount', missing, 'reflink-copy: every copy of a batch shares extents with its source, and hashes and modes are right', () => {
    const dir = fs.mkdtempSync(path.join(xfs!.mountpoint, 'batch-'));
    const { jobs, contents } = makeJobs(dir, 40, 3 << 20);
    const engine = new ReflinkEngine();
    const out = runParallel(jobs, 'reflink-copy', (job) => copyHashed(engine, job));
    expectCopies(jobs, contents, out);
    for (const j of jobs) if (fs.statSync(j.src).size >= 65536) expect(extentsShared(j.dst!), j.dst).toBe(true);
  });

  itWith('XFS loop mount', missing, 'copy engine on XFS clones (shared extents) and says so', () => {
    const dir = fs.mkdtempSync(path.join(xfs!.mountpoint, 'copy-'));
    const { jobs, contents } = makeJobs(dir, 12, 1 << 20);
    const engine = new CopyEngine();
    expectCopies(jobs.slice(0, 1), contents.slice(0, 1), [copyHashed(engine, jobs[0]!)]);
    expect(engine.clonesFiles).toBe(true);
    const rest = runParallel(jobs.slice(1), 'copy', (job) => copyHashed(engine, job));
    expectCopies(jobs.slice(1), contents.slice(1), rest);
    for (const j of jobs) if (fs.statSync(j.src).size >= 65536) expect(extentsShared(j.dst!), j.dst).toBe(true);
  });

  itWith('XFS loop mount', missing, 'copyKnown: clones read nothing while sources stay as walked (no hash, shared extents, meta set); a stale walk gets the clone’s hash', () => {
    const dir = fs.mkdtempSync(path.join(xfs!.mountpoint, 'known-'));
    const { jobs, contents } = makeJobs(dir, 30, 1 << 20);
    jobs[5]!.pre![1] = '7'; // mtime differs from the walk: the source "changed"
    jobs[9]!.pre = undefined; // nothing known about the source: hash the clone
    const withMeta = jobs.map((j, i) => ({ ...j, meta: { atimeNs: 1_000_000_000_000_000_123n + BigInt(i), mtimeNs: 1_100_000_000_000_000_456n + BigInt(i), uid: BigInt(process.getuid?.() ?? 0), gid: BigInt(process.getgid?.() ?? 0) } }));
    const out = copyKnown(withMeta, new ReflinkEngine());
    expect(out.map((o) => o.hash)).toEqual(contents.map((b, i) => (i === 5 || i === 9 ? sha(b) : undefined)));
    expect(out.map((o) => o.size)).toEqual(contents.map((b) => b.length));
    withMeta.forEach((j, i) => {
      expect(fs.readFileSync(j.dst!).equals(contents[i]!)).toBe(true);
      expect(out[i]!.metaApplied).toBe(true);
      expect(fs.lstatSync(j.dst!, { bigint: true }).mtimeNs).toBe(j.meta.mtimeNs);
      if (contents[i]!.length >= 65536) expect(extentsShared(j.dst!)).toBe(true);
    });
  });

  itWith('XFS loop mount', missing, 'a clone whose source is written meanwhile is hashed from the clone (the hash is always of what the snapshot holds)', async () => {
    const dir = fs.mkdtempSync(path.join(xfs!.mountpoint, 'racy-'));
    const engine = new ReflinkEngine();
    const raced = await copyWhileWritten(dir, (job) => copyHashed(engine, job), 150);
    // The scribbler really raced the copies (else this test would prove nothing).
    expect(raced).toBeGreaterThan(0);
  });
});

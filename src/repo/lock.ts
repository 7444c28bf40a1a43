import fs from 'node:fs';
import os from 'node:os';
import { JvsError } from '../errors.js';
import { formatTimestamp } from '../format/canonicalJson.js';
import { native } from '../native/native.js';
import type { Layout } from './layout.js';

/**
 * The repository lock serialising every mutating command.
 *
 * Primary: flock(2) on `.jvs/locks/repo` through the native addon. The kernel (or the
 * JuiceFS metadata engine, which carries flock between clients) drops it the moment
 * the holder dies, and nothing needs refreshing while a long synchronous copy keeps
 * the event loop busy — which is why the mtime-refreshing lock libraries do not fit.
 * Fallback without the addon: an O_EXCL-created directory with an owner record; a
 * holder on this host whose pid is gone is taken over at once.
 */
export interface LockOwner {
  pid: number;
  host: string;
  since: string;
  command: string;
}

export interface RepoLock {
  release(): void;
}

export interface LockOptions {
  /** Wait this long (ms) for a busy lock; 0 fails at once with E_LOCKED. */
  waitMs?: number;
  command?: string;
}

function readOwner(layout: Layout): LockOwner | undefined {
  try {
    return JSON.parse(fs.readFileSync(layout.lockOwner(), 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

function lockedError(layout: Layout, waitedMs: number): JvsError {
  const o = readOwner(layout);
  let who = 'another process (its owner record is not written yet)';
  if (o) {
    const age = Math.max(0, Math.round((Date.now() - Date.parse(o.since)) / 1000));
    who = `${o.pid}@${o.host} since ${o.since} (${age} s ago${o.command ? `, running \`jvs ${o.command}\`` : ''})`;
  }
  return new JvsError('E_LOCKED', `repository is locked by ${who}${waitedMs > 0 ? `; gave up after waiting ${Math.round(waitedMs / 1000)} s` : ''}`, {
    hint: 'wait for it to finish, or re-run with `--wait [seconds]` to queue behind it',
    details: o ? { ...o } : {},
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryFlock(layout: Layout): (() => void) | undefined {
  const n = native()!;
  try {
    const fd = n.flockExclusive(layout.lockFile());
    return () => fs.closeSync(fd);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return undefined;
    throw e;
  }
}

function tryDirLock(layout: Layout): (() => void) | undefined {
  const dir = `${layout.lockFile()}.d`;
  try {
    fs.mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const o = readOwner(layout);
    if (o && o.host === os.hostname() && !pidAlive(o.pid)) {
      fs.rmSync(dir, { recursive: true, force: true });
      return tryDirLock(layout);
    }
    return undefined;
  }
  return () => fs.rmSync(dir, { recursive: true, force: true });
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function acquireRepoLock(layout: Layout, opts: LockOptions = {}): RepoLock {
  fs.mkdirSync(layout.locks, { recursive: true });
  const attempt = native() ? tryFlock : tryDirLock;
  const deadline = Date.now() + (opts.waitMs ?? 0);
  let release = attempt(layout);
  let pause = 5;
  while (!release) {
    if (Date.now() >= deadline) throw lockedError(layout, opts.waitMs ?? 0);
    sleep(Math.min(pause, Math.max(1, deadline - Date.now())));
    pause = Math.min(pause * 2, 200);
    release = attempt(layout);
  }
  const owner: LockOwner = { pid: process.pid, host: os.hostname(), since: formatTimestamp(new Date()), command: opts.command ?? '' };
  fs.writeFileSync(layout.lockOwner(), JSON.stringify(owner) + '\n');
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      fs.rmSync(layout.lockOwner(), { force: true });
      release!();
    },
  };
}

/** Run `fn` holding the repository lock; the lock is released on every path out. */
export function withRepoLock<T>(layout: Layout, opts: LockOptions, fn: () => T): T {
  const lock = acquireRepoLock(layout, opts);
  try {
    return fn();
  } finally {
    lock.release();
  }
}

import fs from 'node:fs';
import os from 'node:os';
import { JvsError, fromSystemError } from '../errors.js';
import { formatTimestamp } from '../format/canonicalJson.js';
import { native } from '../native/native.js';
import type { Reporter } from '../progress.js';
import type { Layout } from './layout.js';

/**
 * The locks that let operations on different worktrees run at the same time (DESIGN
 * section 5). Three kinds, always taken in this order (so no two commands ever wait
 * on each other in a circle):
 *
 *   1. `.jvs/locks/ops`, shared by every operation with a long part (snapshot,
 *      restore, fork, worktree rename/remove), exclusive for `doctor`, which repairs
 *      what in-flight operations are still writing;
 *   2. `.jvs/locks/worktree-<name>`, exclusive: one operation per worktree, held for
 *      the long part (walk, materialise, hash, apply);
 *   3. `.jvs/locks/repo`, exclusive: held only around publish steps (descriptor
 *      rename, worktree config, intent completion, audit append) and by the short
 *      repository-wide commands (gc, pin, config).
 *
 * Primary: flock(2) through the native addon. The kernel (or the JuiceFS metadata
 * engine, which carries flock between clients) drops a lock the moment its holder
 * dies, and nothing needs refreshing while a long synchronous copy keeps the event
 * loop busy — which is why the mtime-refreshing lock libraries do not fit. Each
 * exclusive lock has an owner record beside it, for the E_LOCKED message only; a
 * record naming a dead process on this host is stale and never shown.
 *
 * Fallback without the addon (or with one built before flockShared): an O_EXCL-created
 * directory for the repository lock, taken for the whole operation, so everything is
 * serialised as before; a holder on this host whose pid is gone is taken over at once.
 *
 * Locks are re-entrant within a process (a restore that saves unsaved work as a
 * snapshot takes the same worktree lock twice): flock refuses a second open file of
 * the same process, so nesting is counted here instead.
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
  /** Wait this long (ms) for a busy lock; 0 (the default) fails at once with E_LOCKED; Infinity waits as long as it takes. */
  waitMs?: number;
  command?: string;
  /** Told once, after a second of waiting, what the command is waiting for. */
  reporter?: Reporter;
}

interface LockSpec {
  /** Lock file name under `.jvs/locks/`. */
  name: string;
  shared: boolean;
  /** What is locked, for messages: "repository", "worktree 'x'". */
  what: string;
}

const WAIT_NOTICE_MS = 1000;

const held = new Map<string, { count: number; release: () => void }>();

function readOwner(layout: Layout, name: string): LockOwner | undefined {
  let o: LockOwner;
  try {
    o = JSON.parse(fs.readFileSync(layout.lockOwner(name), 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
  // A holder killed with -9 lost its flock but left its record: never name a dead process.
  if (o.host === os.hostname() && !pidAlive(o.pid)) return undefined;
  return o;
}

function describeOwner(o: LockOwner | undefined, fallback: string): string {
  if (!o) return fallback;
  const age = Math.max(0, Math.round((Date.now() - Date.parse(o.since)) / 1000));
  return `${o.pid}@${o.host} since ${o.since} (${age} s ago${o.command ? `, running \`jvs ${o.command}\`` : ''})`;
}

function lockedError(layout: Layout, spec: LockSpec, waitedMs: number): JvsError {
  const gaveUp = waitedMs > 0 ? `; gave up after waiting ${Math.round(waitedMs / 1000)} s` : '';
  const hint = 'wait for it to finish (commands wait by default; `--wait <seconds>` bounds the wait, `--no-wait` fails at once)';
  if (spec.name === 'ops' && !spec.shared) {
    // Shared holders leave no single owner: name the worktrees being worked on.
    const busy = fs.existsSync(layout.locks) ? fs.readdirSync(layout.locks).filter((n) => n.startsWith('worktree-') && n.endsWith('.owner.json')) : [];
    const who = busy.map((n) => readOwner(layout, n.slice(0, -'.owner.json'.length))).filter((o): o is LockOwner => !!o);
    return new JvsError('E_LOCKED', `repository is in use by ${who.length ? who.map((o) => describeOwner(o, '')).join(', ') : 'running operations (snapshot, restore or fork)'}${gaveUp}`, { hint, details: {} });
  }
  const o = readOwner(layout, spec.name);
  return new JvsError('E_LOCKED', `${spec.what} is locked by ${describeOwner(o, 'another process (its owner record is not written yet)')}${gaveUp}`, {
    hint,
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

/** Whether the addon can take shared locks: without it every operation takes the repository lock whole. */
function canShare(): boolean {
  return typeof native()?.flockShared === 'function';
}

function tryFlock(layout: Layout, spec: LockSpec): (() => void) | undefined {
  const n = native()!;
  const file = layout.lockFile(spec.name);
  try {
    const fd = spec.shared ? n.flockShared!(file) : n.flockExclusive(file);
    return () => fs.closeSync(fd);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return undefined;
    throw e;
  }
}

function tryDirLock(layout: Layout, spec: LockSpec): (() => void) | undefined {
  const dir = `${layout.lockFile(spec.name)}.d`;
  try {
    fs.mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    let o: LockOwner | undefined;
    try {
      o = JSON.parse(fs.readFileSync(layout.lockOwner(spec.name), 'utf8')) as LockOwner;
    } catch {
      o = undefined;
    }
    if (o && o.host === os.hostname() && !pidAlive(o.pid)) {
      fs.rmSync(dir, { recursive: true, force: true });
      return tryDirLock(layout, spec);
    }
    return undefined;
  }
  return () => fs.rmSync(dir, { recursive: true, force: true });
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function acquire(layout: Layout, spec: LockSpec, opts: LockOptions): RepoLock {
  const key = layout.lockFile(spec.name);
  const mine = held.get(key);
  if (mine) {
    mine.count++;
    return once(() => drop(key));
  }
  fs.mkdirSync(layout.locks, { recursive: true });
  // The owner record is written and removed here: through a `.jvs/locks` swapped for a
  // link that would be a file outside the repository.
  if (fs.lstatSync(layout.locks).isSymbolicLink()) {
    throw new JvsError('E_PATH_ESCAPE', `${layout.locks} is a symbolic link; JVS takes no lock through it`, {
      hint: 'replace it with an empty folder (`rm` the link, then `mkdir` it)',
    });
  }
  const attempt = native() ? tryFlock : tryDirLock;
  const waitMs = opts.waitMs ?? 0;
  const started = Date.now();
  let release = attempt(layout, spec);
  let pause = 5;
  let told = false;
  while (!release) {
    const waited = Date.now() - started;
    if (waited >= waitMs) throw lockedError(layout, spec, waitMs);
    if (!told && waited >= WAIT_NOTICE_MS) {
      told = true;
      opts.reporter?.waiting?.(`waiting: ${lockedError(layout, spec, 0).message}`);
    }
    sleep(Math.min(pause, Math.max(1, waitMs - waited)));
    pause = Math.min(pause * 2, 200);
    release = attempt(layout, spec);
  }
  let unlock = release;
  if (!spec.shared) {
    const owner: LockOwner = { pid: process.pid, host: os.hostname(), since: formatTimestamp(new Date()), command: opts.command ?? '' };
    try {
      fs.writeFileSync(layout.lockOwner(spec.name), JSON.stringify(owner) + '\n');
    } catch (e) {
      // The owner record only names the holder in E_LOCKED messages. On a full disk the
      // lock itself (flock) still holds, and commands that free space (doctor, gc run)
      // must still run; the directory lock of the fallback does need the record.
      fs.rmSync(layout.lockOwner(spec.name), { force: true });
      if (!native() || (e as NodeJS.ErrnoException).code !== 'ENOSPC') {
        release();
        throw fromSystemError(e, `could not record the owner of the ${spec.what} lock`);
      }
    }
    unlock = () => {
      // The record goes before the lock, so it never outlives its holder's lock.
      fs.rmSync(layout.lockOwner(spec.name), { force: true });
      release();
    };
  }
  held.set(key, { count: 1, release: unlock });
  return once(() => drop(key));
}

function drop(key: string): void {
  const h = held.get(key)!;
  if (--h.count > 0) return;
  held.delete(key);
  h.release();
}

function once(fn: () => void): RepoLock {
  let done = false;
  return {
    release() {
      if (done) return;
      done = true;
      fn();
    },
  };
}

function withLocks<T>(locks: (() => RepoLock)[], fn: () => T): T {
  const taken: RepoLock[] = [];
  try {
    for (const take of locks) taken.push(take());
    return fn();
  } finally {
    for (const l of taken.reverse()) l.release();
  }
}

const REPO: LockSpec = { name: 'repo', shared: false, what: 'repository' };

/** The repository lock: publish steps and short repository-wide commands. */
export function acquireRepoLock(layout: Layout, opts: LockOptions = {}): RepoLock {
  return acquire(layout, REPO, opts);
}

/** Run `fn` holding the repository lock; the lock is released on every path out. */
export function withRepoLock<T>(layout: Layout, opts: LockOptions, fn: () => T): T {
  return withLocks([() => acquireRepoLock(layout, opts)], fn);
}

/**
 * Run the publish steps of an operation whose long part is done. They wait for the
 * repository lock as long as it takes, whatever `--wait`/`--no-wait` said: those bound
 * the start of an operation (checked before the long part), and giving up here would
 * throw the finished work away or, for a restore, leave the worktree applied but not
 * recorded. Holders of the repository lock only ever hold it briefly or for a gc run.
 */
export function withPublishLock<T>(layout: Layout, opts: LockOptions, fn: () => T): T {
  return withRepoLock(layout, { ...opts, waitMs: Infinity }, fn);
}

/**
 * Run the long part of an operation on these worktrees: the shared operations lock,
 * then each worktree's lock (in name order). Publish steps inside `fn` take the
 * repository lock with `withRepoLock`. Without shared locks (no addon) the repository
 * lock is held throughout instead, which serialises every operation.
 */
export function withWorktreeLock<T>(layout: Layout, worktrees: string[], opts: LockOptions, fn: () => T): T {
  if (!canShare()) return withRepoLock(layout, opts, fn);
  const names = [...new Set(worktrees)].sort();
  for (const n of names) {
    // Callers pass validated names; the lock file name is checked again all the same.
    if (!/^[A-Za-z0-9._-]+$/.test(n) || n === '.' || n === '..') throw new JvsError('E_NAME_INVALID', `${JSON.stringify(n)} is not a worktree name`);
  }
  return withLocks(
    [
      () => acquire(layout, { name: 'ops', shared: true, what: 'repository' }, opts),
      ...names.map((n) => () => acquire(layout, { name: `worktree-${n}`, shared: false, what: `worktree '${n}'` }, opts)),
      // A bounded wait (--no-wait, --wait N) is spent before the long part: a busy
      // repository lock is reported now, not after the work (the publish then waits).
      ...(opts.waitMs === Infinity ? [] : [() => (acquireRepoLock(layout, opts).release(), once(() => {}))]),
    ],
    fn,
  );
}

/** Run `fn` with no other operation running at all (doctor repairs what operations write). */
export function withExclusiveRepo<T>(layout: Layout, opts: LockOptions, fn: () => T): T {
  if (!canShare()) return withRepoLock(layout, opts, fn);
  return withLocks([() => acquire(layout, { name: 'ops', shared: false, what: 'repository' }, opts), () => acquireRepoLock(layout, opts)], fn);
}

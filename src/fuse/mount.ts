import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { JvsError } from '../errors.js';
import { chooseEngine } from '../engines/detect.js';
import { readRepoConfig } from '../repo/config.js';
import type { Layout } from '../repo/layout.js';
import { isInside } from '../repo/names.js';
import { readWorktreeConfig } from '../repo/worktreeConfig.js';
import { restoreSnapshot } from '../restore/restoreSnapshot.js';
import { createSnapshot } from '../snapshot/createSnapshot.js';
import { status } from '../status/status.js';
import { ControlFiles } from './control.js';
import { mountLowLevel } from './lowlevelAdapter.js';
import { serveMountSocket } from './mountSocket.js';

import { WriteGate } from './gate.js';
import { MountTree } from './mountTree.js';
import { SnapshotView } from './snapshotView.js';


/**
 * How long a control-file snapshot or restore waits for a lock another process holds
 * (another worktree publishing, a CLI command on this one) before failing with EAGAIN.
 * Publishing holds the repository lock for milliseconds, so parallel agents on one
 * repository queue instead of failing; the wait is bounded because it holds the
 * daemon's JavaScript thread (ctl/ and the snapshot names) meanwhile.
 */
const CONTROL_LOCK_WAIT_MS = 10_000;
/** Longest path list shown per kind in .jvs/ctl/status. */
const MAX_LISTED = 100;

/** File system type the mount shows in /proc/mounts (`fsname=jvs,subtype=jvs`). */
export const MOUNT_FSTYPE = 'fuse.jvs';

/**
 * The mount's node tree for one worktree, wired to the same operations as the CLI
 * (createSnapshot, restoreSnapshot, resolveRef, loadDescriptors). No kernel involved:
 * tests drive it directly.
 */
export async function buildMountTree(layout: Layout, worktree: string, opts: { operationUmask?: number } = {}): Promise<MountTree> {
  // The daemon runs with umask 0 (modes from create/mkdir already carry the caller's
  // umask); JVS's own files (descriptors, intents, index, audit) must be written with
  // the user's umask instead. Swapping the process umask is safe during snapshot and
  // restore: every mutation through the mount is held then.
  const asUser = <T>(fn: () => T): T => {
    if (opts.operationUmask === undefined) return fn();
    const prev = process.umask(opts.operationUmask);
    try {
      return fn();
    } finally {
      process.umask(prev);
    }
  };
  readWorktreeConfig(layout, worktree); // fails with E_NOT_FOUND for an unknown worktree
  const config = await readRepoConfig(layout);
  const gate = new WriteGate();
  const view = new SnapshotView(layout, worktree);
  let engine: string | undefined;
  const control = new ControlFiles({
    layout,
    worktree,
    engineName: () => (engine ??= chooseEngine(layout.tmp, config.default_engine).engine.name),
    changes: () => {
      // Same stat walk as `jvs status` (hashing only files the index cannot vouch for).
      const s = asUser(() => status(layout, worktree));
      const cap = (xs: string[]) => (xs.length > MAX_LISTED ? [...xs.slice(0, MAX_LISTED), '…'] : xs);
      return {
        clean: s.clean,
        total_added: s.total_added,
        total_modified: s.total_modified,
        total_removed: s.total_removed,
        added: cap(s.added),
        modified: cap(s.modified),
        removed: cap(s.removed),
      };
    },
    snapshot: (req) =>
      gate.exclusiveRun(async () => {
        const dirty = tree.dirtyWalk?.forSnapshot();
        let ok = false;
        try {
          const prev = opts.operationUmask === undefined ? undefined : process.umask(opts.operationUmask);
          const r = await createSnapshot(layout, { worktree, ...req, lockWaitMs: CONTROL_LOCK_WAIT_MS, ...(dirty ? { walkReuse: dirty.walkReuse, onScan: dirty.onScan } : {}) }).finally(() => prev !== undefined && process.umask(prev));
          ok = true;
          // How many folders the walk read, and how many dirty tracking let it take as they were.
          const walk = dirty?.settle(true);
          return {
            snapshot_id: r.snapshot_id,
            ...(r.parent_id ? { parent_id: r.parent_id } : {}),
            note: r.note ?? '',
            tags: r.tags,
            ...(r.partial_paths ? { partial_paths: r.partial_paths } : {}),
            engine: r.engine,
            files: r.files,
            bytes: r.bytes,
            ...(r.degraded.length ? { degraded: r.degraded } : {}),
            ...(walk ? { walk: { folders: walk.folders, folders_not_read: walk.reused } } : {}),
          };
        } finally {
          if (!ok) dirty?.settle(false);
          view.invalidate();
        }
      }),
    restore: (req) =>
      gate
        .exclusiveRun(async () => {
          try {
            const prev = opts.operationUmask === undefined ? undefined : process.umask(opts.operationUmask);
            const r = await restoreSnapshot(layout, { worktree, ...('ref' in req ? { ref: req.ref } : { latestTag: req.latestTag }), discardChanges: !!req.discardChanges, checkOpenFiles: false, lockWaitMs: CONTROL_LOCK_WAIT_MS }).finally(() => prev !== undefined && process.umask(prev));
            return { ...r };
          } finally {
            // Still inside the cut: the restore's own writes are behind the new baseline.
            tree.dirtyWalk?.rebase();
            view.invalidate();
          }
        })
        // After the gate opens (invalidating waits for the kernel's locks, which held
        // changes may hold), before the request returns: whatever the kernel cached of
        // current/ is gone, also when the restore failed halfway.
        .finally(() => tree.onCurrentChanged()),
  });
  const tree = new MountTree({ root: layout.payload(worktree) }, view, control, gate);
  return tree;
}

/** The mount table entry at `mountpoint`, if any (from /proc/self/mountinfo). */
export function mountAt(mountpoint: string): { fstype: string } | undefined {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  const target = path.resolve(mountpoint);
  let found: { fstype: string } | undefined;
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mp = unescapeMountPath(left.split(' ')[4] ?? '');
    if (mp === target) found = { fstype: right.split(' ')[0] ?? '' }; // the last (top) one wins
  }
  return found;
}

const unescapeMountPath = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Lazily unmount `mountpoint` (fusermount -uz, else umount -l). */
export function detach(mountpoint: string): boolean {
  for (const [cmd, args] of [['fusermount', ['-uz', mountpoint]], ['umount', ['-l', mountpoint]]] as const) {
    const r = spawnSync(cmd, [...args], { stdio: 'ignore' });
    if (r.status === 0) return true;
  }
  return false;
}

/** Unmount a JVS mount; a busy mount fails unless `lazy` (then it detaches at once). */
export function unmountPath(mountpoint: string, lazy: boolean): void {
  const tries: Array<[string, string[]]> = lazy
    ? [['fusermount', ['-uz', mountpoint]], ['umount', ['-l', mountpoint]]]
    : [['fusermount', ['-u', mountpoint]], ['umount', [mountpoint]]];
  let why = '';
  for (const [cmd, args] of tries) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status === 0) return;
    why ||= (r.stderr || r.error?.message || '').trim();
  }
  throw new JvsError('E_IO', `could not unmount ${mountpoint}: ${why}`, {
    hint: `close programs using it (\`fuser -vm ${mountpoint}\`), or run \`jvs umount --lazy ${mountpoint}\``,
  });
}

/** Wait (up to 5 s) until no fusermount process for `mountpoint` is left. */
function waitForWatchdogs(mountpoint: string): void {
  const deadline = Date.now() + 5000;
  const running = () => {
    for (const pid of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        if (path.basename(argv[0] ?? '').startsWith('fusermount') && argv.includes(mountpoint)) return true;
      } catch {
        /* gone meanwhile */
      }
    }
    return false;
  };
  while (running() && Date.now() < deadline) spawnSync('sleep', ['0.05']);
}

function isStale(mountpoint: string): boolean {
  // Listing, not stat: the kernel answers stat from cached attributes even after the
  // daemon died (for up to the attribute timeout); opendir always asks the daemon.
  try {
    fs.readdirSync(mountpoint);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOTCONN';
  }
}

/**
 * Check and prepare a mountpoint: it must be an empty folder outside the repository.
 * A mount left by a killed daemon (stat fails with ENOTCONN) is detached first; a live
 * JVS mount is refused.
 */
export function prepareMountpoint(layout: Layout, mountpoint: string): { recoveredStale: boolean } {
  const mp = path.resolve(mountpoint);
  if (isInside(layout.root, mp) || isInside(mp, layout.root)) {
    throw new JvsError('E_PATH_ESCAPE', `the mountpoint ${mp} overlaps the repository ${layout.root}; snapshots would read their own mount`, {
      hint: 'mount somewhere outside the repository, e.g. `jvs mount ~/mnt/<name>`',
    });
  }
  let recoveredStale = false;
  if (isStale(mp)) {
    detach(mp);
    recoveredStale = true;
    // The dead daemon's auto_unmount watchdog (fusermount3) unmounts whatever is on top
    // of the mountpoint once it wakes: let it finish first, or it takes our new mount.
    waitForWatchdogs(mp);
  } else if (mountAt(mp)) {
    throw new JvsError('E_ALREADY_EXISTS', `${mp} is already a mount point (${mountAt(mp)!.fstype})`, {
      hint: `run \`jvs umount ${mp}\` first, or choose another folder`,
    });
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(mp);
  } catch {
    throw new JvsError('E_NOT_FOUND', `mountpoint ${mp} does not exist`, { hint: `create it: \`mkdir -p ${mp}\`` });
  }
  if (!st.isDirectory()) throw new JvsError('E_USAGE', `mountpoint ${mp} is not a folder`, { hint: 'pass an empty folder' });
  if (fs.readdirSync(mp).length) throw new JvsError('E_USAGE', `mountpoint ${mp} is not empty`, { hint: 'pass an empty folder (mounting would hide its content)' });
  return { recoveredStale };
}

export interface RunningMount {
  mountpoint: string;
  worktree: string;
  recoveredStale: boolean;
  /** Resolves when the mount is gone (our unmount, `jvs umount`, or `umount -l`). */
  closed: Promise<void>;
  unmount(): Promise<void>;
}

/**
 * JVS_MOUNT_IMPL names the FUSE binding. Only `ll` (libfuse 3's low-level API,
 * native/fuse/) is left: the fuse-native mount (libfuse 2's high-level API) was removed
 * (issue 15; libfuse 2 has no path invalidation, no writeback cache and caps requests at
 * 128 KiB). Any other value is refused rather than ignored, so a script that still asks
 * for `fuse-native` learns that it is gone instead of measuring the wrong mount.
 */
export function checkMountImplEnv(env: NodeJS.ProcessEnv = process.env): void {
  const impl = env.JVS_MOUNT_IMPL;
  if (impl === undefined || impl === '' || impl === 'll') return;
  throw new JvsError('E_USAGE', `JVS_MOUNT_IMPL=${impl} is not a mount this JVS has; the only one is \`ll\` (libfuse 3)${impl === 'fuse-native' ? ': the fuse-native (libfuse 2) mount was removed' : ''}`, {
    hint: 'unset JVS_MOUNT_IMPL (or set it to `ll`)',
  });
}

/**
 * Why `--allow-other` cannot work for this user, or undefined: fusermount lets a user
 * other than root pass allow_other only when /etc/fuse.conf has a `user_allow_other`
 * line (Debian's fuse3 package installs the file with that line commented out), and
 * otherwise fails with a message the daemon's log swallows.
 */
export function allowOtherRefusal(uid = process.getuid?.() ?? 0, conf = '/etc/fuse.conf'): JvsError | undefined {
  if (uid === 0) return undefined;
  let text = '';
  try {
    text = fs.readFileSync(conf, 'utf8');
  } catch {
    /* no file: not allowed */
  }
  if (text.split('\n').some((l) => l.trim() === 'user_allow_other')) return undefined;
  return new JvsError('E_USAGE', `--allow-other needs a \`user_allow_other\` line in ${conf} when the mount is not root's`, {
    hint: `as root: \`echo user_allow_other >> ${conf}\` (Debian's fuse3 ships it commented out), or mount without --allow-other`,
  });
}

/** Mount `worktree` of the repository at `mountpoint` until unmounted. */
export async function startMount(layout: Layout, worktree: string, mountpoint: string, opts: { allowOther?: boolean; xattrs?: boolean; debug?: boolean } = {}): Promise<RunningMount> {
  checkMountImplEnv();
  if (opts.allowOther) {
    const refusal = allowOtherRefusal();
    if (refusal) throw refusal;
  }
  const mp = path.resolve(mountpoint);
  const { recoveredStale } = prepareMountpoint(layout, mp);
  // Modes from create/mkdir already carry the caller's umask; ours must not cut more.
  const userUmask = process.umask(0);
  const tree = await buildMountTree(layout, worktree, { operationUmask: userUmask });
  const fuse = await mountLowLevel(tree, mp, {
    ...opts,
    loop: process.env.JVS_MOUNT_SINGLE_THREAD === '1' ? 'single' : process.env.JVS_MOUNT_LOOP === 'multi' || process.env.JVS_MOUNT_LOOP === 'single' ? process.env.JVS_MOUNT_LOOP : 'hybrid',
    ...(process.env.JVS_MOUNT_MAX_FDS ? { maxFds: Number(process.env.JVS_MOUNT_MAX_FDS) } : {}),
  });
  // The CLI's snapshot and restore of this worktree reach the daemon here: it flushes the
  // kernel's writeback cache before, and drops what the kernel cached of current/ after.
  const closeSocket = serveMountSocket(layout, worktree, { flush: () => tree.gate.flushNative(), invalidate: () => tree.onCurrentChanged() });
  let unmounting: Promise<void> | undefined;
  let finish!: () => void;
  const closed = new Promise<void>((r) => (finish = r));
  // Notice an unmount done from outside (`jvs umount`, `fusermount -u`, `umount -l`).
  const watch = setInterval(() => {
    if (!mountAt(mp)) void unmount();
  }, 500);
  const unmount = () =>
    (unmounting ??= (async () => {
      clearInterval(watch);
      closeSocket();
      try {
        await fuse.unmount();
      } catch {
        detach(mp);
      }
      finish();
    })());
  return { mountpoint: mp, worktree, recoveredStale, closed, unmount };
}

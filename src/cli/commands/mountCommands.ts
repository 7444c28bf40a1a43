import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ERROR_CLASSES, JvsError, type ErrorClass } from '../../errors.js';
import { commandContext, usage } from '../context.js';
import type { CommandOutput, GlobalOptions } from '../output.js';

const DAEMON_READY_MS = 20_000;

export async function runMount(g: GlobalOptions, mountpoint: string | undefined, o: { daemon?: boolean; allowOther?: boolean; xattrs?: boolean }): Promise<CommandOutput> {
  if (!mountpoint) throw usage('mount needs a mountpoint', 'e.g. `jvs mount ~/mnt/proj` (an empty folder)');
  const ctx = commandContext(g);
  const mp = path.resolve(mountpoint);
  const m = await import('../../fuse/mount.js');
  if (o.daemon) return daemonize(ctx.layout.tmpPath.bind(ctx.layout), mp, ctx.worktreeName, m.mountAt);

  // Started by `jvs mount --daemon`: tell the launcher over the IPC channel whether the
  // mount came up, with the real error class when it did not.
  const launcher = typeof process.send === 'function' ? process : undefined;
  let running: Awaited<ReturnType<typeof m.startMount>> | undefined;
  // Handlers first: the kernel shows the mount before startMount returns, and a signal
  // in between would otherwise kill the process with the mount still up.
  let stopAsked = false;
  const stop = () => {
    if (running) void running.unmount();
    else stopAsked = true;
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const sig of signals) process.on(sig, stop);
  try {
    running = await m.startMount(ctx.layout, ctx.worktreeName, mp, { allowOther: !!o.allowOther, xattrs: !!o.xattrs, debug: g.debug });
  } catch (e) {
    if (launcher) {
      const err = e instanceof JvsError ? e : new JvsError('E_IO', (e as Error).message ?? String(e));
      await tell(launcher, { error: { class: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } });
    }
    for (const sig of signals) process.off(sig, stop);
    throw e;
  }
  if (stopAsked) void running.unmount();
  if (launcher) await tell(launcher, { ready: true });
  if (!g.json && !g.quiet) {
    process.stderr.write(`jvs: serving worktree '${running.worktree}' at ${mp}${running.recoveredStale ? ' (a stale mount was recovered)' : ''}; Ctrl-C or \`jvs umount ${mp}\` to stop\n`);
  }
  await running.closed;
  for (const sig of signals) process.off(sig, stop);
  // The binding's FUSE thread may keep the event loop alive after unmount; do not hang.
  setTimeout(() => process.exit(process.exitCode ?? 0), 300).unref();
  return { data: { mountpoint: mp, worktree: running.worktree, unmounted: true }, human: [`Unmounted ${mp}`] };
}

type DaemonMessage = { ready?: true; error?: { class: string; message: string; hint?: string } };

/** Send one message to the launcher and drop the channel (the daemon outlives it). */
function tell(launcher: NodeJS.Process, msg: DaemonMessage): Promise<void> {
  return new Promise((resolve) => {
    launcher.send!(msg, undefined, undefined, () => {
      launcher.disconnect?.();
      resolve();
    });
  });
}

/**
 * Start `jvs mount` again without --daemon, detached, and wait for it to say the mount
 * is up (or why not) over an IPC channel. Its log is named after the daemon's pid
 * (`.jvs/tmp/mount-<pid>.log`), which is how `jvs doctor` tells a live daemon's log from
 * debris; a daemon that does not come up leaves no log behind, and its error class is
 * this command's.
 */
async function daemonize(tmpPath: (name: string) => string, mp: string, worktree: string, mountAt: (p: string) => { fstype: string } | undefined): Promise<CommandOutput> {
  const args = process.argv.slice(2).filter((a) => a !== '--daemon' && a !== '--json');
  // Until the daemon's pid is known the log carries ours (alive meanwhile: not debris either).
  const starting = tmpPath(`mount-${process.pid}-starting.log`);
  const log = fs.openSync(starting, 'a');
  // Same Node flags as this process (the launcher gives `mount` a large young generation).
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args], { cwd: process.cwd(), detached: true, stdio: ['ignore', log, log, 'ipc'] });
  fs.closeSync(log);
  let logFile = starting;
  if (child.pid) {
    logFile = tmpPath(`mount-${child.pid}.log`);
    fs.renameSync(starting, logFile);
  }
  const outcome = await new Promise<DaemonMessage & { exited?: number | null; timedOut?: boolean }>((resolve) => {
    const timer = setTimeout(() => resolve({ timedOut: true }), DAEMON_READY_MS);
    child.on('message', (m: DaemonMessage) => {
      clearTimeout(timer);
      resolve(m);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ exited: code });
    });
    child.on('error', () => {
      clearTimeout(timer);
      resolve({ exited: null });
    });
  });
  if (outcome.ready && mountAt(mp)?.fstype === 'fuse.jvs') {
    if (child.connected) child.disconnect();
    child.unref();
    return {
      data: { mountpoint: mp, worktree, pid: child.pid, log: logFile, daemon: true },
      human: [`Mounted worktree '${worktree}' at ${mp} (daemon pid ${child.pid}, log ${logFile})`, `Stop it with \`jvs umount ${mp}\``],
    };
  }
  // It did not come up: stop it if it still runs, and leave nothing behind.
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  const tail = safeRead(logFile).trim().split('\n').slice(-5).join('\n');
  fs.rmSync(logFile, { force: true });
  if (outcome.error) {
    const cls = (ERROR_CLASSES as readonly string[]).includes(outcome.error.class) ? (outcome.error.class as ErrorClass) : 'E_IO';
    throw new JvsError(cls, outcome.error.message, outcome.error.hint ? { hint: outcome.error.hint } : {});
  }
  const why = outcome.timedOut ? `did not come up within ${DAEMON_READY_MS / 1000} s` : `exited (code ${outcome.exited}) before mounting`;
  throw new JvsError('E_IO', `the mount daemon ${why} at ${mp}${tail ? `:\n${tail}` : ''}`, { hint: `run \`jvs mount ${mp}\` in the foreground to watch it` });
}

function safeRead(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

export async function runUmount(_g: GlobalOptions, mountpoint: string | undefined, o: { lazy?: boolean }): Promise<CommandOutput> {
  if (!mountpoint) throw usage('umount needs the mountpoint', 'e.g. `jvs umount ~/mnt/proj`');
  const mp = path.resolve(mountpoint);
  const { mountAt, unmountPath } = await import('../../fuse/mount.js');
  const entry = mountAt(mp);
  if (!entry) throw new JvsError('E_NOT_FOUND', `nothing is mounted at ${mp}`, { hint: '`grep fuse.jvs /proc/mounts` lists JVS mounts' });
  if (entry.fstype !== 'fuse.jvs') throw new JvsError('E_USAGE', `${mp} is a ${entry.fstype} mount, not a JVS mount`, { hint: 'use umount(8) for other file systems' });
  unmountPath(mp, !!o.lazy);
  return { data: { mountpoint: mp, unmounted: true }, human: [`Unmounted ${mp}`] };
}

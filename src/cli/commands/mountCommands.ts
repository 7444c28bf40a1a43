import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { JvsError } from '../../errors.js';
import { commandContext, usage } from '../context.js';
import type { CommandOutput, GlobalOptions } from '../output.js';

const DAEMON_READY_MS = 20_000;

export async function runMount(g: GlobalOptions, mountpoint: string | undefined, o: { daemon?: boolean; allowOther?: boolean }): Promise<CommandOutput> {
  if (!mountpoint) throw usage('mount needs a mountpoint', 'e.g. `jvs mount ~/mnt/proj` (an empty folder)');
  const ctx = commandContext(g);
  const mp = path.resolve(mountpoint);
  const m = await import('../../fuse/mount.js');
  if (o.daemon) return daemonize(ctx.layout.tmpPath(`mount-${process.pid}.log`), mp, ctx.worktreeName, m.mountAt);

  const running = await m.startMount(ctx.layout, ctx.worktreeName, mp, { allowOther: !!o.allowOther, debug: g.debug, jsPassthrough: process.env.JVS_MOUNT_JS_PASSTHROUGH === '1' });
  if (!g.json && !g.quiet) {
    process.stderr.write(`jvs: serving worktree '${running.worktree}' at ${mp}${running.recoveredStale ? ' (a stale mount was recovered)' : ''}; Ctrl-C or \`jvs umount ${mp}\` to stop\n`);
  }
  const stop = () => void running.unmount();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, stop);
  await running.closed;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, stop);
  // The binding's FUSE thread may keep the event loop alive after unmount; do not hang.
  setTimeout(() => process.exit(process.exitCode ?? 0), 300).unref();
  return { data: { mountpoint: mp, worktree: running.worktree, unmounted: true }, human: [`Unmounted ${mp}`] };
}

/** Start `jvs mount` again without --daemon, detached, and wait until the mount is up. */
async function daemonize(logFile: string, mp: string, worktree: string, mountAt: (p: string) => { fstype: string } | undefined): Promise<CommandOutput> {
  const args = process.argv.slice(2).filter((a) => a !== '--daemon' && a !== '--json');
  const log = fs.openSync(logFile, 'a');
  // Same Node flags as this process (the launcher gives `mount` a large young generation).
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args], { cwd: process.cwd(), detached: true, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  const deadline = Date.now() + DAEMON_READY_MS;
  while (Date.now() < deadline && exited === undefined && mountAt(mp)?.fstype !== 'fuse.jvs') await new Promise((r) => setTimeout(r, 50));
  if (mountAt(mp)?.fstype !== 'fuse.jvs') {
    if (exited === undefined) child.kill('SIGTERM');
    const tail = safeRead(logFile).trim().split('\n').slice(-5).join('\n');
    throw new JvsError('E_IO', `the mount daemon did not come up at ${mp}${tail ? `:\n${tail}` : ''}`, { hint: `see ${logFile}; run \`jvs mount ${mp}\` in the foreground to watch it` });
  }
  child.unref();
  return {
    data: { mountpoint: mp, worktree, pid: child.pid, log: logFile, daemon: true },
    human: [`Mounted worktree '${worktree}' at ${mp} (daemon pid ${child.pid}, log ${logFile})`, `Stop it with \`jvs umount ${mp}\``],
  };
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

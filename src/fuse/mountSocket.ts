import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Layout } from '../repo/layout.js';

/**
 * A mount daemon's control socket, so the CLI can reach the daemon serving the worktree
 * it works on: `.jvs/tmp/.mount-<pid>-<worktree>.sock` (doctor leaves entries naming a
 * live pid alone), one line per request, one line
 * back (`ok`, or `error <message>`):
 *   flush       write the kernel's dirty pages of the mount back (its writeback cache
 *               may hold writes made through current/ that the worktree folder does not
 *               show yet): before a CLI snapshot or restore reads the worktree
 *   invalidate  drop what the kernel cached of current/: after a CLI restore changed it
 * The daemon removes its socket when it unmounts; a client removes sockets nobody
 * listens on (a killed daemon's).
 */
export type MountSocketOp = 'flush' | 'invalidate';

const socketName = (worktree: string, pid: number) => `.mount-${pid}-${worktree}.sock`;

/** Sockets of daemons serving `worktree` (names only: cheap enough for every snapshot). */
export function mountSockets(layout: Layout, worktree: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(layout.tmp);
  } catch {
    return [];
  }
  return names.filter((n) => /^\.mount-\d+-/.exec(n) && n.endsWith(`-${worktree}.sock`) && /^\.mount-\d+$/.test(n.slice(0, -(worktree.length + 6)))).map((n) => path.join(layout.tmp, n));
}

/** Serve the socket for this daemon; returns the function that closes and removes it. */
export function serveMountSocket(layout: Layout, worktree: string, handlers: Record<MountSocketOp, () => Promise<void>>): () => void {
  const file = layout.tmpPath(socketName(worktree, process.pid));
  fs.rmSync(file, { force: true });
  const server = net.createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const op = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        const h = handlers[op as MountSocketOp];
        if (!h) {
          conn.write(`error unknown request ${JSON.stringify(op)}\n`);
          continue;
        }
        h().then(
          () => conn.write('ok\n'),
          (e) => conn.write(`error ${String((e as Error)?.message ?? e).replace(/\n/g, ' ')}\n`),
        );
      }
    });
    conn.on('error', () => {});
  });
  server.on('error', () => {}); // e.g. a path longer than sun_path: the CLI then cannot reach us
  server.listen(file);
  server.unref();
  return () => {
    server.close();
    fs.rmSync(file, { force: true });
  };
}

/** Ask every daemon serving `worktree` to run `op`; sockets nobody listens on are removed. */
export async function notifyMounts(layout: Layout, worktree: string, op: MountSocketOp, timeoutMs = 30_000): Promise<void> {
  await Promise.all(
    mountSockets(layout, worktree).map(
      (file) =>
        new Promise<void>((resolve) => {
          const conn = net.connect(file);
          const done = () => {
            clearTimeout(timer);
            conn.destroy();
            resolve();
          };
          const timer = setTimeout(done, timeoutMs);
          conn.setEncoding('utf8');
          conn.on('connect', () => conn.write(`${op}\n`));
          conn.on('data', (d: string) => d.includes('\n') && done());
          conn.on('error', (e: NodeJS.ErrnoException) => {
            if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') fs.rmSync(file, { force: true });
            done();
          });
        }),
    ),
  );
}

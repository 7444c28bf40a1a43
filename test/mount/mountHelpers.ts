import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { jvsOk } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

/** Why a libfuse 3 low-level mount (native/fuse/) cannot run here, or undefined. */
export function fuse3Missing(): string | undefined {
  if (!fs.existsSync('/dev/fuse')) return '/dev/fuse does not exist';
  if (spawnSync('fusermount3', ['-V'], { stdio: 'ignore' }).status !== 0) return 'fusermount3 (Debian package fuse3) is not installed';
  try {
    createRequire(import.meta.url)(path.resolve(import.meta.dirname, '../../build/Release/jvs_fuse3.node'));
  } catch (e) {
    return `the libfuse 3 mount is not built (npm run build:fuse3; needs libfuse3-dev): ${(e as Error).message}`;
  }
  return undefined;
}

/** Why the libfuse 3 mount cannot use FUSE over io_uring here, or undefined when it can. */
export function uringMissing(): string | undefined {
  const ll = fuse3Missing();
  if (ll) return ll;
  const addon = createRequire(import.meta.url)(path.resolve(import.meta.dirname, '../../build/Release/jvs_fuse3.node')) as { transport(): { uring: boolean; libfuse: string } };
  if (!addon.transport().uring) return `the mount was built against libfuse ${addon.transport().libfuse}, without io_uring (scripts/build-fuse3.mjs needs meson, liburing-dev, libnuma-dev and deb.debian.org)`;
  let param = '';
  try {
    param = fs.readFileSync('/sys/module/fuse/parameters/enable_uring', 'utf8').trim();
  } catch {
    return 'this kernel has no fuse.enable_uring parameter (CONFIG_FUSE_IO_URING)';
  }
  if (param !== 'Y' && param !== '1') return 'the kernel does not allow FUSE over io_uring (as root: echo Y > /sys/module/fuse/parameters/enable_uring)';
  return undefined;
}

/** Why a real FUSE mount cannot run here, or undefined when it can (the libfuse 3 mount is the only one). */
export const fuseMissing = fuse3Missing;

export interface Sh {
  code: number;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string, cwd: string, input?: string): Sh {
  const r = spawnSync('bash', ['-c', cmd], { cwd, encoding: 'utf8', input: input ?? '', timeout: 120_000 });
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

export function shOk(cmd: string, cwd: string): string {
  const r = sh(cmd, cwd);
  if (r.code !== 0) throw new Error(`${cmd} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export interface Mounted {
  root: string;
  main: string;
  mnt: string;
  pid: number;
}

const live: Array<{ mnt: string; pid?: number }> = [];

/**
 * Environment of `jvs mount`: the libfuse 3 low-level session (native/fuse/) over io_uring
 * or /dev/fuse, with its own loop (one thread plus a pool for slow requests) or
 * libfuse's single- or multi-threaded loop.
 */
let mountEnv: Record<string, string> = {};
export const MOUNT_MODES = [
  // The default: FUSE over io_uring where the build and the kernel allow it (uringMissing()).
  { name: 'libfuse 3 low-level', env: {} },
  { name: 'libfuse 3 low-level over /dev/fuse', env: { JVS_MOUNT_URING: '0' } },
  { name: 'libfuse 3 low-level, single-threaded loop', env: { JVS_MOUNT_SINGLE_THREAD: '1', JVS_MOUNT_URING: '0' } },
  { name: "libfuse 3 low-level, libfuse's multi-threaded loop", env: { JVS_MOUNT_LOOP: 'multi', JVS_MOUNT_URING: '0' } },
] as const;
export type MountMode = (typeof MOUNT_MODES)[number];
export function useMountEnv(env: Readonly<Record<string, string>>): void {
  mountEnv = { ...env };
}

/** Unmount everything a test mounted, then remove the mountpoints. */
afterEach(() => {
  for (const m of live.splice(0)) {
    spawnSync('fusermount', ['-uz', m.mnt], { stdio: 'ignore' });
    if (m.pid) {
      try {
        process.kill(m.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    fs.rmSync(m.mnt, { recursive: true, force: true });
  }
});

/** An empty mountpoint outside any repository, cleaned after the test. */
export function mountpoint(): string {
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'jvs-mnt-'));
  live.push({ mnt });
  return mnt;
}

/** `jvs mount --daemon` of worktree main; `files` are written (and `before` runs) before the mount. */
export function mountNewRepo(files: Record<string, string> = {}, mountArgs: string[] = [], before?: (main: string) => void): Mounted {
  const dir = tmpDir();
  jvsOk(['init', 'repo'], { cwd: dir });
  const root = path.join(dir, 'repo');
  const main = path.join(root, 'main');
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(main, rel)), { recursive: true });
    fs.writeFileSync(path.join(main, rel), content);
  }
  before?.(main);
  const mnt = mountpoint();
  return { root, main, mnt, pid: mountAgain(main, mnt, mountArgs) };
}

/** Mount (again) at `mnt` and return the daemon's pid. */
export function mountAgain(main: string, mnt: string, mountArgs: string[] = []): number {
  const r = jvsOk(['mount', '--daemon', '--json', ...mountArgs, mnt], { cwd: main, env: mountEnv }).json<{ pid: number }>();
  live.push({ mnt, pid: r.pid });
  return r.pid;
}

/** Ids of the snapshots shown under .jvs/snapshots (folders only), oldest first. */
export function snapshotIds(mnt: string): string[] {
  return fs
    .readdirSync(path.join(mnt, '.jvs/snapshots'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

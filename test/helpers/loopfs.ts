import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

export interface LoopFs {
  mountpoint: string;
  unmount(): void;
}

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

/** Why a loop-mounted filesystem of `type` cannot be made here, or undefined when it can. */
export function loopFsMissing(type: 'xfs' | 'ext4'): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root (loop mounts need root)';
  const mkfs = type === 'xfs' ? 'mkfs.xfs' : 'mkfs.ext4';
  if (spawnSync('which', [mkfs]).status !== 0) return `${mkfs} is not installed (apt-get install ${type === 'xfs' ? 'xfsprogs' : 'e2fsprogs'})`;
  if (!fs.existsSync('/dev/loop-control')) return '/dev/loop-control is missing (no loop device support)';
  return undefined;
}

/**
 * Make a filesystem image of `sizeMiB` in a temp dir and loop-mount it. XFS is made
 * with reflink=1. Call unmount() in afterAll/afterEach: it unmounts and deletes.
 */
export function mountLoopFs(type: 'xfs' | 'ext4', sizeMiB: number): LoopFs {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `jvs-${type}-`));
  const image = path.join(dir, 'fs.img');
  const mountpoint = path.join(dir, 'mnt');
  fs.mkdirSync(mountpoint);
  fs.closeSync(fs.openSync(image, 'w'));
  fs.truncateSync(image, sizeMiB * 2 ** 20);
  const mk = type === 'xfs' ? run('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', image]) : run('mkfs.ext4', ['-q', '-F', image]);
  if (!mk.ok) throw new Error(`mkfs ${type} failed: ${mk.out}`);
  const m = run('mount', ['-o', 'loop', image, mountpoint]);
  if (!m.ok) throw new Error(`mount -o loop failed: ${m.out}`);
  return {
    mountpoint,
    unmount() {
      let u = run('umount', [mountpoint]);
      if (!u.ok) u = run('umount', ['-l', mountpoint]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether `file` has extents shared with another file (`filefrag -v` marks them "shared"). */
export function extentsShared(file: string): boolean {
  const r = spawnSync('filefrag', ['-v', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`filefrag failed: ${r.stderr}`);
  return /\bshared\b/.test(r.stdout);
}

/** Whether FICLONE works in `dir` (tried on two scratch files). */
export function canClone(dir: string): boolean {
  const a = path.join(dir, '.clone-probe-a');
  const b = path.join(dir, '.clone-probe-b');
  fs.writeFileSync(a, 'x');
  try {
    fs.copyFileSync(a, b, fs.constants.COPYFILE_FICLONE_FORCE);
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(a, { force: true });
    fs.rmSync(b, { force: true });
  }
}

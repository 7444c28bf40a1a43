import fs from 'node:fs';
import path from 'node:path';

/** One line of /proc/self/mountinfo, reduced to what engine detection needs. */
export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
}

export const JUICEFS_FSTYPE = 'fuse.juicefs';

/** mountinfo escapes space, tab, newline and backslash in paths as `\ooo` octal. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Parse the text of /proc/self/mountinfo. Format (proc(5)): `id parent maj:min root
 * mountpoint options [optional fields…] - fstype source superoptions`; the optional
 * fields end at a lone `-`, so the fields after it are found by that marker, never by
 * position. Malformed lines are skipped.
 */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (dash < 0 || f.length < dash + 3 || f[4] === undefined) continue;
    out.push({ mountPoint: unescapeMountPath(f[4]), fsType: f[dash + 1]!, source: unescapeMountPath(f[dash + 2]!) });
  }
  return out;
}

/** Whether `p` is `mountPoint` or below it, on path-component boundaries (`/mnt/jfs2` is not inside `/mnt/jfs`). */
export function isUnderMountPoint(p: string, mountPoint: string): boolean {
  if (mountPoint === '/') return p.startsWith('/');
  const mp = mountPoint.endsWith('/') ? mountPoint.slice(0, -1) : mountPoint;
  return p === mp || p.startsWith(mp + '/');
}

/**
 * The mount holding the absolute path `p`: the longest mount point that contains it on
 * a component boundary. Among equal mount points the last one listed wins, because a
 * later mount at the same place hides the earlier one.
 */
export function mountOf(mounts: readonly MountEntry[], p: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    if (!isUnderMountPoint(p, m.mountPoint)) continue;
    if (!best || m.mountPoint.length >= best.mountPoint.length) best = m;
  }
  return best;
}

/**
 * The mount holding `dir` on this machine (symlinks in `dir` resolved first, so a link
 * into a JuiceFS mount counts as JuiceFS). Undefined when mountinfo cannot be read.
 */
export function mountOfPath(dir: string, mountInfoFile = '/proc/self/mountinfo'): MountEntry | undefined {
  let text: string;
  try {
    text = fs.readFileSync(mountInfoFile, 'utf8');
  } catch {
    return undefined;
  }
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    real = path.resolve(dir);
  }
  return mountOf(parseMountInfo(text), real);
}

/** The `juicefs` executable found on PATH, or undefined. */
export function findJuicefsCli(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'juicefs');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

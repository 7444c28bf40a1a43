/**
 * Where a mount path points. The mount shows:
 *
 *   /current/…                 the served worktree's payload (read-write passthrough)
 *   /.jvs/snapshots/<name>/…   snapshots by id (folders), by tag and HEAD (links to ids)
 *   /.jvs/ctl/<file>           control files: snapshot, restore, status
 *
 * Pure: no file system access, so it is tested without a kernel.
 */
export const CURRENT = 'current';
export const CONTROL = '.jvs';
export const SNAPSHOTS = 'snapshots';
export const CTL = 'ctl';
export const CTL_FILES = ['snapshot', 'restore', 'status'] as const;
export type CtlName = (typeof CTL_FILES)[number];

export type Route =
  | { kind: 'root' }
  | { kind: 'current'; rel: string }
  | { kind: 'control' }
  | { kind: 'snapshots' }
  | { kind: 'snapshot'; name: string; rel: string }
  | { kind: 'ctlDir' }
  | { kind: 'ctl'; name: CtlName }
  | { kind: 'none' };

const NONE: Route = { kind: 'none' };

/** Route a path as the kernel sends it (absolute, `/`-separated, no trailing slash). */
export function route(p: string): Route {
  if (p === '/' || p === '') return { kind: 'root' };
  const parts = p.split('/').slice(1);
  // The kernel resolves `.` and `..` itself; anything else carrying them is refused.
  if (parts.some((s) => s === '' || s === '.' || s === '..' || s.includes('\0'))) return NONE;
  const [top, second, third, ...rest] = parts;
  if (top === CURRENT) return { kind: 'current', rel: parts.slice(1).join('/') };
  if (top !== CONTROL) return NONE;
  if (second === undefined) return { kind: 'control' };
  if (second === SNAPSHOTS) {
    if (third === undefined) return { kind: 'snapshots' };
    return { kind: 'snapshot', name: third, rel: rest.join('/') };
  }
  if (second === CTL) {
    if (third === undefined) return { kind: 'ctlDir' };
    if (rest.length === 0 && (CTL_FILES as readonly string[]).includes(third)) return { kind: 'ctl', name: third as CtlName };
  }
  return NONE;
}

/** Parent path and base name; `/a/b` → [`/a`, `b`]. */
export function splitPath(p: string): [string, string] {
  const i = p.lastIndexOf('/');
  return [i <= 0 ? '/' : p.slice(0, i), p.slice(i + 1)];
}

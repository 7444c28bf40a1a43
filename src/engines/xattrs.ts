import os from 'node:os';
import { native } from '../native/native.js';

/**
 * Extended attributes travel with the tree itself: a snapshot's files carry their own
 * (copied from the worktree), and restore and fork copy them back out. The format does
 * not record them (the reference's payload root hash and manifests have no place for
 * them, and interop stays byte-exact), so they are neither hashed nor verified; see
 * docs/integrity.md.
 *
 * Every engine path ends here: FICLONE, copy_file_range, `juicefs clone` and plain
 * copies keep different subsets (a clone shares data blocks, not the inode's
 * attributes), so the attributes of every entry a run created or rewrote are set by
 * one pass through the addon (native/jvs_xattr.c) after the entry's owner is final
 * (a chown clears security.capability). Files hard-linked from the parent snapshot
 * share its inode and therefore its attributes already.
 */

/** Remove destination attributes the source lacks (an entry that existed before the run). */
export const XATTR_EXACT = 1;

/** Beyond this many lost attributes the rest are counted in one line (the audit record stays readable). */
const MAX_LINES = 20;

const WHY: Record<string, string> = {
  EOPNOTSUPP: "the destination's filesystem keeps no extended attributes",
  ENOTSUP: "the destination's filesystem keeps no extended attributes",
  E2BIG: "the value is too large for the destination's filesystem",
  ENOSPC: "no room for it on the destination's filesystem",
  EPERM: 'not permitted (trusted.* and security.* need root)',
  EACCES: 'permission denied',
  ELOOP: 'the path runs through a symbolic link',
  ENOENT: 'the entry is gone',
};

/** What a run without the addon says once: Node.js itself cannot read or write extended attributes. */
export const NO_ADDON_XATTRS =
  'extended attributes were not copied: the native addon is not loaded, and Node.js alone cannot read them (rebuild it with `npm run build:native` in the jvs package, and leave JVS_DISABLE_NATIVE unset)';

export interface KeptXattrs {
  /** The losses as lines for a `degraded` list (empty when everything was kept). */
  degraded: string[];
  /** Whether any source entry had attributes (true when that cannot be known: no addon). */
  seen: boolean;
}

/** A compressed snapshot's `.gz` files are new files: the attributes of the worktree's stay unstored. */
export const COMPRESSED_XATTRS = 'extended attributes are not kept by compressed snapshots: the worktree has some, and this snapshot does not hold them (take it without --compress to keep them)';

/**
 * Give each entry `rels` (paths relative to both roots, "" the root) of `dstRoot` the
 * extended attributes its twin in `srcRoot` has. Never throws for a lost attribute.
 */
export function keepXattrs(srcRoot: string, dstRoot: string, rels: readonly string[], flags = 0): KeptXattrs {
  if (!rels.length) return { degraded: [], seen: false };
  const n = native();
  if (!n?.xattrCopy) return { degraded: [NO_ADDON_XATTRS], seen: true };
  const losses = n.xattrCopy(srcRoot, dstRoot, rels.join('\0') + '\0', rels.length, flags, Math.min(4, os.availableParallelism()));
  return { degraded: lossLines(losses, rels), seen: losses.withXattrs > 0 || losses.length > 0 };
}

/** The addon's flat [index, name, code, …] as readable lines, at most MAX_LINES + 1. */
function lossLines(losses: ReadonlyArray<string | number>, rels: readonly string[]): string[] {
  const out: string[] = [];
  const total = losses.length / 3;
  for (let k = 0; k < total && k < MAX_LINES; k++) {
    const rel = rels[losses[3 * k] as number] || '.';
    const name = losses[3 * k + 1] as string;
    const code = losses[3 * k + 2] as string;
    const why = WHY[code] ? `${code}: ${WHY[code]}` : code;
    out.push(name ? `extended attribute ${name} of ${rel} not kept (${why})` : `extended attributes of ${rel} not kept (${why})`);
  }
  if (total > MAX_LINES) out.push(`${total - MAX_LINES} more extended attributes not kept (see the lines above for the reasons)`);
  return out;
}

/**
 * Whether any of `rels` below `root` has extended attributes (true when that cannot be
 * known: no addon). The addon's copy of a tree onto itself finds every value equal and
 * sets nothing; it counts the entries that have any.
 */
export function anyXattrs(root: string, rels: readonly string[]): boolean {
  const n = native();
  if (!n?.xattrCopy) return true;
  if (!rels.length) return false;
  return n.xattrCopy(root, root, rels.join('\0') + '\0', rels.length, 0, Math.min(4, os.availableParallelism())).withXattrs > 0;
}

/**
 * Whether the filesystem holding `dir` may keep extended attributes (false only when it
 * refuses them outright, e.g. a JuiceFS mount without --enable-xattr); true when unknown.
 */
export function filesystemKeepsXattrs(dir: string): boolean {
  try {
    return native()?.xattrSupported?.(dir) ?? true;
  } catch {
    return true;
  }
}

/**
 * Whether two entries hold the same extended attributes (the addon reads them); true
 * without the addon (nothing can be told apart, and copies say so in `degraded`).
 */
export function sameXattrs(rootA: string, rootB: string, rel: string): boolean {
  const n = native();
  if (!n?.xattrGet) return true;
  let a: Array<string | Buffer>, b: Array<string | Buffer>;
  try {
    a = n.xattrGet(rootA, rel);
    b = n.xattrGet(rootB, rel);
  } catch {
    return false; // unreadable: not known to be equal, so not shared
  }
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    if (typeof x === 'string' ? x !== y : !(y instanceof Buffer) || !x.equals(y)) return false;
  }
  return true;
}

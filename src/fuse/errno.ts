import os from 'node:os';
import type { ErrorClass } from '../errors.js';
import { JvsError } from '../errors.js';

/** An errno name the adapter turns into `-errno` for the kernel. */
export type ErrnoName = keyof typeof os.constants.errno;

/** A filesystem-level failure of the node tree (what a syscall on the mount returns). */
export class FsError extends Error {
  constructor(readonly errno: ErrnoName, message?: string) {
    super(message ?? errno);
    this.name = 'FsError';
  }
}

export const fsErr = (errno: ErrnoName, message?: string) => new FsError(errno, message);

/**
 * How a JVS error class surfaces through a control file: the `write` fails with this
 * errno, so `echo … > .jvs/ctl/snapshot` exits non-zero with the errno's text, and
 * reading the control file gives the class, message and hint. Documented in docs/mount.md.
 * A Record over every class, so a new class cannot be added without choosing its errno.
 */
export const ERRNO_OF_CLASS = {
  E_USAGE: 'EINVAL',
  E_NOT_A_REPO: 'ENOENT',
  E_ALREADY_EXISTS: 'EEXIST',
  E_NAME_INVALID: 'EINVAL',
  E_PATH_ESCAPE: 'EACCES',
  E_DESCRIPTOR_CORRUPT: 'EIO',
  E_PAYLOAD_HASH_MISMATCH: 'EIO',
  E_LINEAGE_BROKEN: 'EIO',
  E_PARTIAL_SNAPSHOT: 'EINVAL',
  E_GC_PLAN_MISMATCH: 'EINVAL',
  E_FORMAT_UNSUPPORTED: 'EOPNOTSUPP',
  E_AUDIT_CHAIN_BROKEN: 'EIO',
  E_LOCKED: 'EAGAIN',
  E_DETACHED: 'EBUSY',
  E_NOT_FOUND: 'ENOENT',
  E_AMBIGUOUS_REF: 'EINVAL',
  E_HOOK_REJECTED: 'EPERM',
  E_ENGINE_UNKNOWN: 'EINVAL',
  E_ENGINE_UNAVAILABLE: 'EOPNOTSUPP',
  E_CONFIG_INVALID: 'EINVAL',
  E_NOTE_INVALID: 'EINVAL',
  E_UNSUPPORTED_FILE: 'EOPNOTSUPP',
  E_NO_SPACE: 'ENOSPC',
  E_IO: 'EIO',
  E_INTERNAL: 'EIO',
} as const satisfies Record<ErrorClass, ErrnoName>;

/** errno name for anything a node-tree operation may throw. */
export function errnoOf(e: unknown): ErrnoName {
  if (e instanceof FsError) return e.errno;
  if (e instanceof JvsError) return ERRNO_OF_CLASS[e.code];
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && code in os.constants.errno) return code as ErrnoName;
  return 'EIO';
}

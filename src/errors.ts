/**
 * The one error type of JVS. Every failure a user can meet is a JvsError with a
 * stable class (`E_…`), a message naming the problem and, where one exists, a hint
 * naming the next command to run. Exit codes come from EXIT_CODES and nowhere else.
 */
export const ERROR_CLASSES = [
  'E_USAGE',
  'E_NOT_A_REPO',
  'E_ALREADY_EXISTS',
  'E_NAME_INVALID',
  'E_PATH_ESCAPE',
  'E_DESCRIPTOR_CORRUPT',
  'E_PAYLOAD_HASH_MISMATCH',
  'E_LINEAGE_BROKEN',
  'E_PARTIAL_SNAPSHOT',
  'E_GC_PLAN_MISMATCH',
  'E_FORMAT_UNSUPPORTED',
  'E_AUDIT_CHAIN_BROKEN',
  'E_LOCKED',
  'E_DETACHED',
  'E_NOT_FOUND',
  'E_AMBIGUOUS_REF',
  'E_HOOK_REJECTED',
  'E_ENGINE_UNKNOWN',
  'E_ENGINE_UNAVAILABLE',
  'E_CONFIG_INVALID',
  'E_NOTE_INVALID',
  'E_UNSUPPORTED_FILE',
  'E_NO_SPACE',
  'E_IO',
  'E_INTERNAL',
] as const;

export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** Process exit codes, grouped so scripts can tell misuse from damage from contention. */
export const EXIT_CODES: Record<ErrorClass, number> = {
  E_USAGE: 2,
  E_NAME_INVALID: 2,
  E_NOTE_INVALID: 2,
  E_ENGINE_UNKNOWN: 2,
  E_CONFIG_INVALID: 2,
  E_NOT_A_REPO: 3,
  E_NOT_FOUND: 3,
  E_AMBIGUOUS_REF: 3,
  E_ALREADY_EXISTS: 4,
  E_DETACHED: 4,
  E_HOOK_REJECTED: 4,
  E_PARTIAL_SNAPSHOT: 4,
  E_GC_PLAN_MISMATCH: 4,
  E_LOCKED: 5,
  E_FORMAT_UNSUPPORTED: 6,
  E_ENGINE_UNAVAILABLE: 6,
  E_UNSUPPORTED_FILE: 6,
  E_PATH_ESCAPE: 7,
  E_DESCRIPTOR_CORRUPT: 8,
  E_PAYLOAD_HASH_MISMATCH: 8,
  E_LINEAGE_BROKEN: 8,
  E_AUDIT_CHAIN_BROKEN: 8,
  E_NO_SPACE: 9,
  E_IO: 9,
  E_INTERNAL: 10,
};

export class JvsError extends Error {
  readonly code: ErrorClass;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorClass,
    message: string,
    opts: { hint?: string; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'JvsError';
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details;
  }

  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { class: this.code, message: this.message };
    if (this.hint) out.hint = this.hint;
    if (this.details) out.details = this.details;
    return out;
  }
}

export function isJvsError(e: unknown): e is JvsError {
  return e instanceof JvsError;
}

/**
 * Map a raw Node.js system error to a JvsError so no errno string ever reaches a
 * user without a class and a next step.
 */
/** Error codes that mean a full disk or quota, from Node and from SQLite. */
export const NO_SPACE_CODES: readonly string[] = ['ENOSPC', 'EDQUOT', 'SQLITE_FULL'];

export function fromSystemError(e: unknown, what: string): JvsError {
  if (e instanceof JvsError) return e;
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'SQLITE_FULL':
      return new JvsError('E_NO_SPACE', `${what}: no space left on device${err.path ? ` (${err.path})` : ''}`, {
        hint: 'free space on the filesystem holding the repository: delete files you do not need, or old snapshots (`jvs gc plan --keep N`, then `jvs gc run --plan-id <id>`); `jvs doctor --repair-runtime` removes leftovers of interrupted operations. Then retry',
        cause: e,
      });
    case 'EACCES':
    case 'EPERM':
      return new JvsError('E_IO', `${what}: permission denied (${err.path ?? ''})`, {
        hint: 'check the owner and permissions of that path, then retry',
        cause: e,
      });
    case 'ELOOP':
      // Every open JVS makes inside a tree refuses symlinks (O_NOFOLLOW, RESOLVE_NO_SYMLINKS):
      // one met there replaced a file or folder after JVS had looked at it.
      return new JvsError('E_PATH_ESCAPE', `${what}: ${err.path ?? 'a path'} is, or passes through, a symbolic link where JVS had seen a file or folder (it changed meanwhile); JVS does not follow it`, {
        hint: 'find out what else writes into that folder, then retry',
        cause: e,
      });
    case 'ENOENT':
      return new JvsError('E_NOT_FOUND', `${what}: ${err.path ?? 'path'} does not exist`, {
        hint: 'check the path; `jvs doctor` reports damaged repositories',
        cause: e,
      });
    default:
      return new JvsError('E_IO', `${what}: ${err?.message ?? String(e)}`, {
        hint: 'run `jvs doctor` to check the repository, then retry',
        cause: e,
      });
  }
}

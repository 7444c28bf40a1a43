/**
 * What a name read back from the control plane (`.jvs/`) may be. Anyone who can write
 * `.jvs/` can put any string into an intent, a worktree config, a descriptor, a pin or
 * a gc plan; these predicates are the one place that decides which strings JVS will
 * ever turn into a path. A value that fails is damage (E_DESCRIPTOR_CORRUPT naming
 * the file), never acted on. User input goes through validateName (src/repo/names.ts),
 * which says why a name is refused; both accept exactly the same names
 * (test/unit/controlNames.test.ts holds them together).
 */

const NAME_RE = /^[a-zA-Z0-9._-]{1,255}$/;

/** A worktree, tag or pin name as JVS writes it: `[a-zA-Z0-9._-]+`, at most 255 characters, not `.` or `..`. */
export function isCleanName(s: unknown): s is string {
  return typeof s === 'string' && NAME_RE.test(s) && s !== '.' && s !== '..';
}

/** A gc plan id: a lower-case UUID. */
export const PLAN_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isPlanId(s: unknown): s is string {
  return typeof s === 'string' && PLAN_ID_RE.test(s);
}

/**
 * An intent id. JVS writes the snapshot id of a snapshot, `restore-<ms>-<hex>` /
 * `fork-<ms>-<hex>` of a restore or fork and `gc-<plan id>` of a gc run; what matters
 * for safety is that it is one clean name (it becomes the intent's file name and a
 * stage folder under `.jvs/tmp/`), so any clean name is accepted.
 */
export function isIntentId(s: unknown): s is string {
  return isCleanName(s);
}

/**
 * The last line of defence, applied by Layout to every name it joins into a path: one
 * component that can neither climb (`..`) nor descend (`/`). Semantic checks above
 * come first and report damage; this one only makes a missed check fail safe.
 */
export function isPathComponent(s: string): boolean {
  return typeof s === 'string' && s !== '' && s !== '.' && s !== '..' && !s.includes('/') && !s.includes('\0');
}

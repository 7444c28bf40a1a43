import fs from 'node:fs';
import path from 'node:path';
import { JvsError } from '../errors.js';
import { fsPath, nameFromBytes } from '../format/nameBytes.js';

const NAME_RE = /^[a-zA-Z0-9._-]+$/;
export const MAX_NAME_LENGTH = 255;

/**
 * Validate a worktree or tag name: NFC-normalised first, then `[a-zA-Z0-9._-]+`,
 * never `.` or `..`. Returns the normalised name. Look-alike characters (Cyrillic
 * `а`, full-width `／`) are outside the allowed set and so rejected.
 */
export function validateName(raw: string, what: 'worktree' | 'tag' | 'pin' = 'worktree'): string {
  const name = raw.normalize('NFC');
  const shown = JSON.stringify(raw);
  const fail = (why: string) =>
    new JvsError('E_NAME_INVALID', `invalid ${what} name ${shown}: ${why}`, {
      hint: `use letters, digits, '.', '_' and '-' only, e.g. ${what === 'tag' ? 'v1.0' : 'feature-x'}`,
    });
  if (name === '') throw fail('it is empty');
  if (name === '.' || name === '..') throw fail('it is a path component');
  if (name.length > MAX_NAME_LENGTH) throw fail(`it is longer than ${MAX_NAME_LENGTH} characters`);
  if (/[\u0000-\u001f\u007f]/.test(name)) throw fail('it contains control characters');
  if (/[/\\]/.test(name)) throw fail('it contains a path separator');
  if (!NAME_RE.test(name)) throw fail('it contains characters outside [a-zA-Z0-9._-]');
  return name;
}

/** True when `child` is `parent` or lies below it (path-boundary safe: /a/bc is not in /a/b). */
export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/**
 * Resolve a user-supplied relative path inside `root` and prove that neither the
 * lexical path nor any existing symlink on the way leads out of it.
 */
export function resolveInside(root: string, rel: string): string {
  const shown = JSON.stringify(rel);
  if (rel.includes('\0')) {
    throw new JvsError('E_NAME_INVALID', `path ${shown} contains a NUL byte`, { hint: 'pass a plain relative path' });
  }
  const target = path.resolve(root, rel.normalize('NFC'));
  if (!isInside(root, target)) {
    throw new JvsError('E_PATH_ESCAPE', `path ${shown} leads outside ${root}`, {
      hint: 'pass a path relative to the worktree root without `..` components',
    });
  }
  // Check the deepest existing ancestor with symlinks resolved.
  let probe = target;
  while (!fs.existsSync(fsPath(probe)) && probe !== root) probe = path.dirname(probe);
  const realRoot = fs.realpathSync(root);
  const realProbe = nameFromBytes(fs.realpathSync.native(fsPath(probe), { encoding: 'buffer' }));
  if (!isInside(realRoot, realProbe)) {
    throw new JvsError('E_PATH_ESCAPE', `path ${shown} leads outside ${root} through a symbolic link`, {
      hint: 'snapshots never follow symlinks out of the worktree; pass a path that stays inside it',
    });
  }
  return target;
}

/** `..`/`.` components, empty components, a leading or trailing `/`, or a NUL. */
const UNCLEAN_REL = /(?:^|\/)\.\.?(?:\/|$)|\/\/|^\/|\/$|\0/;

/**
 * Why `rel`, a path read from the control plane (an index row, a manifest), is not a
 * clean relative path inside a tree; undefined when it is. Such a path is never used.
 */
export function relProblem(rel: unknown): string | undefined {
  if (typeof rel !== 'string' || rel === '') return 'an empty path';
  if (UNCLEAN_REL.test(rel)) return `the path ${JSON.stringify(rel)} is not a clean relative path`;
  return undefined;
}

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { JvsError } from '../errors.js';
import { resolveInside } from '../repo/names.js';

/**
 * Which paths of a worktree an operation sees: `.jvsignore` rules (gitignore syntax,
 * via the `ignore` package) and, for partial snapshots, a list of selected paths.
 * Both plug into the tree walk as one `include(rel, isDir)` predicate.
 */
export const IGNORE_FILE = '.jvsignore';

export type IgnoreMatcher = (rel: string, isDir: boolean) => boolean;

/** The selection of a worktree with no ignore rules and no partial paths (callers may skip asking it). */
export const takesEverything: IgnoreMatcher = () => true;

export function loadIgnore(root: string): IgnoreMatcher | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(root, IGNORE_FILE), 'utf8');
  } catch {
    return undefined;
  }
  // Loaded on first use: worktrees without a .jvsignore never pay for the matcher.
  const ignore = createRequire(import.meta.url)('ignore') as typeof import('ignore');
  const ig = ignore().add(text);
  return (rel, isDir) => ig.ignores(isDir ? `${rel}/` : rel);
}

/**
 * Normalise user-given partial paths to worktree-relative POSIX paths, refusing
 * anything that leaves the worktree (`..`, absolute paths elsewhere, symlinks out).
 */
export function normalizePartialPaths(root: string, raw: readonly string[], cwd: string = root): string[] {
  const out = new Set<string>();
  for (const p of raw) {
    if (p === '') continue;
    const abs = resolveInside(root, path.relative(root, path.resolve(cwd, p)));
    const rel = path.relative(root, abs).split(path.sep).join('/');
    if (rel === '') {
      throw new JvsError('E_USAGE', `--paths ${JSON.stringify(p)} names the whole worktree`, { hint: 'leave out --paths to snapshot everything' });
    }
    if (!fs.existsSync(abs) && !isSymlink(abs)) {
      throw new JvsError('E_NOT_FOUND', `--paths ${JSON.stringify(p)} does not exist in the worktree`, { hint: 'pass paths relative to the worktree root, e.g. `--paths Assets ProjectSettings`' });
    }
    out.add(rel);
  }
  // Drop paths inside other selected paths.
  const sorted = [...out].sort();
  return sorted.filter((p) => !sorted.some((q) => q !== p && p.startsWith(`${q}/`)));
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** True when `rel` is a selected path, inside one, or a folder on the way to one. */
export function partialMatcher(paths: readonly string[]): IgnoreMatcher {
  return (rel) => paths.some((p) => rel === p || rel.startsWith(`${p}/`) || p.startsWith(`${rel}/`));
}

/** Combine: an entry is taken when every given predicate takes it. */
export function selection(parts: { ignored?: IgnoreMatcher[]; partial?: readonly string[]; exclude?: (rel: string) => boolean }): IgnoreMatcher {
  const ignored = (parts.ignored ?? []).filter(Boolean);
  const partial = parts.partial?.length ? partialMatcher(parts.partial) : undefined;
  if (!ignored.length && !partial && !parts.exclude) return takesEverything;
  return (rel, isDir) => {
    if (parts.exclude?.(rel)) return false;
    if (ignored.some((m) => m(rel, isDir))) return false;
    return partial ? partial(rel, isDir) : true;
  };
}

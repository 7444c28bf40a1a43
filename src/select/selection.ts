import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { JvsError } from '../errors.js';
import { resolveInside } from '../repo/names.js';
import { native } from '../native/native.js';
import { fsPath } from '../format/nameBytes.js';

/**
 * Which paths of a worktree an operation sees: `.jvsignore` rules (gitignore syntax,
 * via the `ignore` package) and, for partial snapshots, a list of selected paths.
 * Both plug into the tree walk as one `include(rel, isDir)` predicate.
 */
export const IGNORE_FILE = '.jvsignore';

export type IgnoreMatcher = (rel: string, isDir: boolean) => boolean;

/** The selection of a worktree with no ignore rules and no partial paths (callers may skip asking it). */
export const takesEverything: IgnoreMatcher = () => true;

/**
 * The ignore rules of the tree `root` (a worktree, or a snapshot's recorded copy), or
 * undefined when it has no `.jvsignore`. The file is opened through a directory fd of
 * the root without following a symlink (native/jvs_beneath.c; without the addon an
 * O_NOFOLLOW open after an lstat of the root) and must be a regular file: a
 * `.jvsignore` that is a symlink (to /etc/shadow, to a file of another tree) or a
 * FIFO, device or folder is refused with E_UNSUPPORTED_FILE, never read and never
 * waited on (O_NONBLOCK). Refused, not skipped: without its rules a restore would
 * overwrite or delete the paths the user asked JVS to leave alone.
 */
export function loadIgnore(root: string, kind: 'worktree' | 'snapshot' = 'worktree'): IgnoreMatcher | undefined {
  const text = readIgnoreText(root, kind);
  if (text === undefined) return undefined;
  // Loaded on first use: worktrees without a .jvsignore never pay for the matcher.
  const ignore = createRequire(import.meta.url)('ignore') as typeof import('ignore');
  const ig = ignore().add(text);
  return (rel, isDir) => ig.ignores(isDir ? `${rel}/` : rel);
}

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW;

/** The text of `root`'s `.jvsignore` (undefined: none), read as loadIgnore reads it. */
export function readIgnoreText(root: string, kind: 'worktree' | 'snapshot'): string | undefined {
  const file = path.join(root, IGNORE_FILE);
  const refuse = (what: string) =>
    new JvsError('E_UNSUPPORTED_FILE', `${file} is ${what}; ignore rules are read only from a regular file, never through a link or from a pipe or device`, {
      hint: kind === 'worktree'
        ? `replace it with a regular file holding the rules (e.g. \`cp --remove-destination "$(readlink -f ${file})" ${file}\`) or remove it, then run the command again`
        : 'the snapshot was changed after it was published; `jvs verify --all` lists the damaged snapshots; restore another snapshot',
      details: { path: file },
    });
  let fd: number;
  try {
    const n = native();
    if (n?.openBeneath) fd = n.openBeneath(root, IGNORE_FILE, OPEN_FLAGS);
    else {
      if (!fs.lstatSync(root).isDirectory()) throw Object.assign(new Error(`ENOTDIR: ${root}`), { code: 'ENOTDIR' });
      fd = fs.openSync(file, OPEN_FLAGS);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw refuse('a symbolic link');
    if (code === 'ENOTDIR' || code === 'EXDEV') {
      throw new JvsError('E_PATH_ESCAPE', `cannot read ${file}: ${root} is not a folder (a symbolic link?)`, {
        hint: kind === 'worktree' ? 'run `jvs doctor` to check the worktree roots' : '`jvs verify --all` lists the damaged snapshots; restore another snapshot',
      });
    }
    throw e;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw refuse(st.isFIFO() ? 'a FIFO (named pipe)' : st.isDirectory() ? 'a folder' : 'not a regular file');
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
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
    if (!fs.existsSync(fsPath(abs)) && !isSymlink(abs)) {
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
    return fs.lstatSync(fsPath(p)).isSymbolicLink();
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

import { createHash } from 'node:crypto';
import { sha256Hex } from './hash.js';
import { nameBytes } from './nameBytes.js';

/** What the payload root hash needs to know of one entry. */
export interface HashedEntry {
  rel: string;
  type: 'dir' | 'file' | 'symlink';
  /** Permission bits (the format prints them as %04o). */
  mode: number;
  size: number;
  /** SHA-256 of the content (files); ignored for dirs and symlinks. */
  contentHash?: string;
  /** Link target (symlinks). */
  target?: string;
}

/** `mode=%04o` texts by permission bits: a tree uses a handful of modes, formatted once each. */
const modeTexts = new Map<number, string>();
function modeText(mode: number): string {
  const bits = mode & 0o777;
  let t = modeTexts.get(bits);
  if (t === undefined) modeTexts.set(bits, (t = bits.toString(8).padStart(4, '0')));
  return t;
}

/** SHA-256 of a name's bytes (format/nameBytes.ts): the reference hashes Go strings, which are bytes. */
const nameHash = (s: string) => sha256Hex(s.isWellFormed() ? s : nameBytes(s));

/**
 * `<type>:<rel>:<meta>:<hash>` exactly as the reference implementation forms it. A rel
 * that is not UTF-8 stays escaped in the returned line; payloadRootHash hashes the
 * line's bytes (nameBytes).
 */
export function payloadLine(e: HashedEntry): string {
  const mode = modeText(e.mode);
  switch (e.type) {
    case 'dir':
      return `dir:${e.rel}:mode=${mode}:${nameHash(e.rel.slice(e.rel.lastIndexOf('/') + 1))}`;
    case 'symlink':
      return `symlink:${e.rel}:mode=${mode}:${nameHash(e.target ?? '')}`;
    case 'file':
      if (!e.contentHash) throw new Error(`payload hash: file ${e.rel} has no content hash`);
      return `file:${e.rel}:mode=${mode},size=${e.size}:${e.contentHash}`;
  }
}

const SURROGATE = /[\ud800-\udfff]/;

function isSorted(xs: readonly string[]): boolean {
  for (let i = 1; i < xs.length; i++) if (xs[i - 1]! > xs[i]!) return false;
  return true;
}

export function payloadRootHash(entries: Iterable<HashedEntry>): string {
  // Lines start with their type, so sorted lines are the dir lines, then the file
  // lines, then the symlink lines, each group sorted by path. A walk lists paths in
  // nearly that order already: each group is sorted only if a pass finds it is not.
  const groups: Record<HashedEntry['type'], string[]> = { dir: [], file: [], symlink: [] };
  // JS compares strings by UTF-16 code unit, which equals UTF-8 byte order unless a
  // line holds a surrogate (an astral character, or a byte of a name that is not
  // UTF-8, format/nameBytes.ts); only then sort the lines' bytes.
  let plain = true;
  for (const e of entries) {
    // Only the path can hold a surrogate: the rest of a line is ASCII (targets appear hashed).
    if (plain && SURROGATE.test(e.rel)) plain = false;
    groups[e.type].push(payloadLine(e) + '\n');
  }
  const h = createHash('sha256');
  if (plain) {
    // The built-in sort's default order is exactly UTF-16 code-unit order, without a
    // JS comparator call per comparison; one update of the joined text, not one per line.
    const text = [groups.dir, groups.file, groups.symlink].map((g) => (isSorted(g) ? g : g.sort()).join('')).join('');
    h.update(text);
  } else {
    const bufs = [...groups.dir, ...groups.file, ...groups.symlink].map((l) => nameBytes(l));
    bufs.sort(Buffer.compare);
    h.update(Buffer.concat(bufs));
  }
  return h.digest('hex');
}

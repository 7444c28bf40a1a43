import fs from 'node:fs';
import path from 'node:path';

export type EntryType = 'dir' | 'file' | 'symlink';

export interface TreeEntry {
  /** Path relative to the walked root, always with `/`. */
  rel: string;
  type: EntryType;
  stat: fs.BigIntStats;
}

/**
 * Which entries a walk takes. `include` sees every path (with `isDir`) before it is
 * descended into, so ignore rules and partial-path selections plug in here without
 * the walk knowing about either.
 */
export interface WalkFilter {
  include?(rel: string, isDir: boolean): boolean;
}

export interface WalkResult {
  entries: TreeEntry[];
  /** Sockets, FIFOs and devices: not versioned, reported so nothing is dropped silently. */
  unsupported: string[];
}

/**
 * Depth-first walk of `root` in name order (parents before children). Symlinks are
 * reported as links and never followed; the root itself is not an entry.
 */
export function walkTree(root: string, filter: WalkFilter = {}): WalkResult {
  const entries: TreeEntry[] = [];
  const unsupported: string[] = [];
  const visit = (dirAbs: string, dirRel: string) => {
    const names = fs.readdirSync(dirAbs).sort();
    for (const name of names) {
      const rel = dirRel ? `${dirRel}/${name}` : name;
      const abs = path.join(dirAbs, name);
      let stat: fs.BigIntStats;
      try {
        stat = fs.lstatSync(abs, { bigint: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // vanished mid-walk
        throw e;
      }
      const type: EntryType | undefined = stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : stat.isSymbolicLink() ? 'symlink' : undefined;
      if (filter.include && !filter.include(rel, type === 'dir')) continue;
      if (!type) {
        unsupported.push(rel);
        continue;
      }
      entries.push({ rel, type, stat });
      if (type === 'dir') visit(abs, rel);
    }
  };
  visit(root, '');
  return { entries, unsupported };
}

/** The stat fields the manifests keep of an entry (what change detection keys on). */
export function statRecord(e: TreeEntry) {
  return {
    rel: e.rel,
    type: e.type,
    mode: permBits(e.stat),
    size: e.type === 'file' ? Number(e.stat.size) : 0,
    mtimeNs: e.stat.mtimeNs,
    ctimeNs: e.stat.ctimeNs,
    dev: e.stat.dev,
    ino: e.stat.ino,
  };
}

/** Permission bits as the format records them (`mode=%04o`). */
export function permBits(stat: fs.BigIntStats | fs.Stats): number {
  return Number(stat.mode) & 0o7777;
}

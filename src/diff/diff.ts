import fs from 'node:fs';
import path from 'node:path';
import { JvsError } from '../errors.js';
import { hashFiles } from '../fsutil/fileHash.js';
import { permBits, readLink, startWalk, walkTree, type TreeEntry } from '../fsutil/walk.js';
import { READY_FILE, type Layout } from '../repo/layout.js';
import { resolveRef } from '../repo/refs.js';
import { loadDescriptors } from '../repo/snapshots.js';
import { readWorktreeConfig } from '../repo/worktreeConfig.js';
import { loadIgnore, selection, takesEverything, type IgnoreMatcher } from '../select/selection.js';
import { compressionOf } from '../format/compression.js';
import type { Descriptor } from '../format/descriptor.js';
import { expandCompressed } from '../verify/compressedPayload.js';
import { composedHead, coveredBy } from '../status/composedHead.js';
import { compareWorktree } from '../status/status.js';
import { IndexDb } from '../index/indexDb.js';
import { storedCheckedManifest, type IndexedEntry } from '../index/manifests.js';
import { isSelected } from '../restore/restoreSelection.js';

export interface DiffOptions {
  worktree: string;
  from?: string;
  to?: string;
}

export interface DiffResult {
  from_snapshot_id: string;
  /** null when the right side is the live worktree. */
  to_snapshot_id: string | null;
  from_time: string;
  to_time: string | null;
  /** Set when the right side is the live worktree. */
  to_worktree?: string;
  added: string[];
  removed: string[];
  modified: string[];
  total_added: number;
  total_removed: number;
  total_modified: number;
  /** Whether the answer came from the index (manifests and the worktree state) rather than from walking the payloads. */
  index_used: boolean;
  /** Files read to compare their content. */
  files_hashed: number;
}

interface Side {
  root: string;
  entries: Map<string, TreeEntry>;
  /** Where an entry lives when not under `root` (a composed side: several snapshots). */
  rootOf?: Map<string, string>;
}

function readSide(root: string, include: IgnoreMatcher | undefined): Side {
  const walk = walkTree(root, {
    include: (rel, isDir) => path.posix.basename(rel) !== READY_FILE && (include ? include(rel, isDir) : true),
  });
  return { root, entries: new Map(walk.entries.map((e) => [e.rel, e])) };
}

/**
 * A partial snapshot compared with the live worktree: paths it did not take come from
 * the snapshots before it (src/status/composedHead.ts), so edits outside its paths show.
 */
function readComposedSide(from: Descriptor, byId: Map<string, Descriptor>, include: IgnoreMatcher, treeOf: (d: Descriptor) => string): Side {
  const side: Side = { root: treeOf(from), entries: new Map(), rootOf: new Map() };
  const covered: string[] = [];
  const seen = new Set<string>();
  for (let d: Descriptor | undefined = from; d && !seen.has(d.snapshot_id); d = d.parent_id ? byId.get(d.parent_id) : undefined) {
    seen.add(d.snapshot_id);
    let root = side.root;
    if (d !== from) {
      try {
        root = treeOf(d);
      } catch {
        break; // an older snapshot gc pruned or damage hides: its paths count as new
      }
      if (!fs.existsSync(root)) break;
    }
    const outside = [...covered];
    for (const e of readSide(root, (rel, isDir) => include(rel, isDir) && !coveredBy(outside, rel)).entries.values()) {
      if (side.entries.has(e.rel)) continue;
      side.entries.set(e.rel, e);
      side.rootOf!.set(e.rel, root);
    }
    if (!d.partial_paths?.length) break;
    covered.push(...d.partial_paths);
  }
  return side;
}

const rootFor = (s: Side, rel: string) => s.rootOf?.get(rel) ?? s.root;

const shown = (e: { rel: string; type: string }) => (e.type === 'dir' ? `${e.rel}/` : e.rel);

/** Whether two entries are the same; 'read' when only their content can tell (read by the caller). */
function sameEntry(a: Side, ea: TreeEntry, b: Side, eb: TreeEntry): boolean | 'read' {
  if (ea.type !== eb.type) return false;
  if (permBits(ea.stat) !== permBits(eb.stat)) return false;
  switch (ea.type) {
    case 'dir':
      return true;
    case 'symlink':
      return readLink(path.join(rootFor(a, ea.rel), ea.rel)) === readLink(path.join(rootFor(b, eb.rel), eb.rel));
    case 'file':
      if (ea.stat.size !== eb.stat.size) return false;
      // Snapshots share unchanged files by hard link: the same inode is the same content.
      if (ea.stat.dev === eb.stat.dev && ea.stat.ino === eb.stat.ino) return true;
      return 'read';
  }
}

/**
 * Compare two states of a worktree. No refs: its head snapshot against the live
 * worktree; one ref: that snapshot against the live worktree; two refs: snapshot
 * against snapshot. Content is compared by size, then inode, then SHA-256; a mode
 * change or a symlink retarget counts as modified; mtimes do not. Paths the
 * worktree's `.jvsignore` excludes are left out, and for a partial snapshot only its
 * selected paths are compared.
 */
export function diff(layout: Layout, opts: DiffOptions): DiffResult {
  const wt = readWorktreeConfig(layout, opts.worktree);
  const all = loadDescriptors(layout).descriptors;
  const fromRef = opts.from ?? wt.head_snapshot_id;
  if (!fromRef) {
    throw new JvsError('E_NOT_FOUND', `worktree '${wt.name}' has no snapshots yet, so there is nothing to compare with`, { hint: 'take one with `jvs snapshot "note"`' });
  }
  const from = resolveRef(layout, fromRef, wt, all).descriptor;
  const to = opts.to !== undefined ? resolveRef(layout, opts.to, wt, all).descriptor : undefined;
  const ignore = to ? undefined : loadIgnore(layout.payload(wt.name));
  // Against the live worktree, a partial snapshot hides nothing (readComposedSide);
  // between two snapshots only the paths a partial one took are compared.
  const partial = to ? [...(from.partial_paths ?? []), ...to.partial_paths ?? []] : [];
  const include = selection({ ignored: ignore ? [ignore] : [], partial });
  // A compressed snapshot is compared as the tree it decompresses to (a private copy in .jvs/tmp).
  const expanded: string[] = [];
  const treeOf = (d: Descriptor): string => {
    if (!compressionOf(d)) return layout.snapshotDir(d.snapshot_id);
    expandCompressed(layout, d, (tree) => {
      fs.renameSync(tree, `${tree}-diff`);
      expanded.push(`${tree}-diff`);
    }, true);
    return expanded[expanded.length - 1]!;
  };
  const byId = new Map(all.map((d) => [d.snapshot_id, d]));
  const idx = IndexDb.open(layout);
  try {
    const fast = fromIndex(layout, idx, wt.name, from, to, include, byId);
    if (fast) return fast;
    const a = !to && from.partial_paths?.length
      ? readComposedSide(from, byId, include, treeOf)
      : readSide(treeOf(from), include);
    return compare(from, to, a, readSide(to ? treeOf(to) : layout.worktreeRoot(wt.name), include), wt.name);
  } finally {
    idx?.close();
    for (const t of expanded) fs.rmSync(t, { recursive: true, force: true });
  }
}

/**
 * The diff from the index, when it holds every manifest the diff needs and each passes
 * its descriptor's check (storedCheckedManifest): two snapshots are compared manifest
 * to manifest without reading a file; a snapshot and the live worktree the way `status`
 * compares them (compareWorktree: a stat walk, reading only files the worktree state
 * does not vouch for). Undefined otherwise: the caller walks the payloads.
 */
function fromIndex(layout: Layout, idx: IndexDb | undefined, worktree: string, from: Descriptor, to: Descriptor | undefined, include: IgnoreMatcher, byId: Map<string, Descriptor>): DiffResult | undefined {
  if (!idx) return undefined;
  const manifestOf = (d: Descriptor) => storedCheckedManifest(idx, d);
  let result: Lists & { hashed: number };
  if (to) {
    const a = manifestOf(from);
    const b = a && manifestOf(to);
    if (!a || !b) return undefined;
    result = { ...compareManifests(a, b, include), hashed: 0 };
  } else {
    // With nothing left out, the worktree is scanned on every core while the manifests are read.
    const walk = include === takesEverything ? startWalk(layout.worktreeRoot(worktree)) : undefined;
    // A partial snapshot stands for the snapshots before it where it took nothing (composedHead).
    let missing = false;
    const composed = composedHead(
      from.snapshot_id,
      (id) => {
        const d = byId.get(id);
        if (!d) throw new JvsError('E_NOT_FOUND', `snapshot ${id} has no descriptor`);
        return d;
      },
      (id) => manifestOf(byId.get(id)!) ?? ((missing = true), []),
      (id) => fs.existsSync(layout.snapshotDir(id)),
    );
    if (missing) return undefined; // (a scan started above ends on its own)
    const c = compareWorktree(layout, idx, worktree, composed.manifest, include, walk);
    result = { added: c.added, removed: c.removed, modified: c.modified, hashed: c.hashed };
  }
  return described(from, to, worktree, result, { index_used: true, files_hashed: result.hashed });
}

type Lists = Pick<DiffResult, 'added' | 'removed' | 'modified'>;

/** Two manifests compared where `include` reaches: type, permission bits, size and content hash (files), target (symlinks). */
function compareManifests(a: readonly IndexedEntry[], b: readonly IndexedEntry[], include: IgnoreMatcher): Lists {
  const taken = (e: IndexedEntry) => isSelected(include, e.rel, e.type === 'dir');
  const inB = new Map<string, IndexedEntry>();
  for (const e of b) if (taken(e)) inB.set(e.rel, e);
  const added: string[] = [];
  const removed: string[] = [];
  const modified: string[] = [];
  const inA = new Set<string>();
  for (const ea of a) {
    if (!taken(ea)) continue;
    inA.add(ea.rel);
    const eb = inB.get(ea.rel);
    if (!eb) removed.push(shown(ea));
    else if (ea.type !== eb.type || ea.mode !== eb.mode || (ea.type === 'file' ? ea.size !== eb.size || ea.contentHash !== eb.contentHash : ea.type === 'symlink' && ea.target !== eb.target)) modified.push(shown(eb));
  }
  for (const eb of inB.values()) if (!inA.has(eb.rel)) added.push(shown(eb));
  return { added, removed, modified };
}

function compare(from: Descriptor, to: Descriptor | undefined, a: Side, b: Side, worktree: string): DiffResult {
  const added: string[] = [];
  const removed: string[] = [];
  const modified: string[] = [];
  // Same size, other inode: the content decides, read below for all of them at once.
  const toRead: Array<{ rel: string; shown: string }> = [];
  for (const [rel, ea] of a.entries) {
    const eb = b.entries.get(rel);
    if (!eb) removed.push(shown(ea));
    else {
      const same = sameEntry(a, ea, b, eb);
      if (same === 'read') toRead.push({ rel, shown: shown(eb) });
      else if (!same) modified.push(shown(eb));
    }
  }
  for (const [rel, eb] of b.entries) if (!a.entries.has(rel)) added.push(shown(eb));
  const hashA = hashUnder(a, toRead);
  const hashB = hashUnder(b, toRead);
  toRead.forEach((r, i) => {
    if (hashA[i] !== hashB[i]) modified.push(r.shown);
  });
  return described(from, to, worktree, { added, removed, modified }, { index_used: false, files_hashed: 2 * toRead.length });
}

/**
 * Hashes of `files` on side `s`, in order: one batch per root folder (a composed side
 * has several), on every core, each file opened below a folder fd of its root.
 */
function hashUnder(s: Side, files: ReadonlyArray<{ rel: string }>): string[] {
  const byRoot = new Map<string, number[]>();
  files.forEach((f, i) => {
    const root = rootFor(s, f.rel);
    const at = byRoot.get(root);
    if (at) at.push(i);
    else byRoot.set(root, [i]);
  });
  const out = new Array<string>(files.length);
  for (const [root, at] of byRoot) {
    const hashes = hashFiles(at.map((i) => files[i]!.rel), undefined, root);
    at.forEach((i, k) => (out[i] = hashes[k]!));
  }
  return out;
}

function described(from: Descriptor, to: Descriptor | undefined, worktree: string, r: Lists, how: Pick<DiffResult, 'index_used' | 'files_hashed'>): DiffResult {
  return {
    from_snapshot_id: from.snapshot_id,
    to_snapshot_id: to ? to.snapshot_id : null,
    from_time: from.created_at,
    to_time: to ? to.created_at : null,
    ...(to ? {} : { to_worktree: worktree }),
    added: r.added.sort(),
    removed: r.removed.sort(),
    modified: r.modified.sort(),
    total_added: r.added.length,
    total_removed: r.removed.length,
    total_modified: r.modified.length,
    ...how,
  };
}

import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { permBits, readLink, scannedStat, under, walkTree, type EntryStat, type PendingWalk, type TreeEntry, type WalkFilter } from '../fsutil/walk.js';
import { fromSystemError, JvsError } from '../errors.js';
import { native } from '../native/native.js';
import type { Engine } from './engine.js';
import type { MaterializeResult } from './materialize.js';
import { materializeByClone } from './materializeClone.js';
import { copyVerified, type VerifiedJob } from './parallelCopy.js';
import { tracePhase } from '../trace.js';
import { faultPoint } from '../repo/faults.js';
import { takesEverything } from '../select/selection.js';
import { fsPath, nameFromBytes } from '../format/nameBytes.js';
import { treeWriter, type TreeWriter } from './treeWriter.js';

export interface ApplyOptions extends WalkFilter {
  /** Names never taken from the source (e.g. `.READY`). */
  skipNames?: ReadonlySet<string>;
  /**
   * Whether the destination file already holds the source file's content (`src` has
   * the manifest's content hash when listed). Without a yes the file is rewritten
   * (always correct, costs a copy). A yes may be the caller's record that vouches for
   * the file: when the file is then left exactly as the walk saw it, the record is
   * handed back in ApplyResult.vouched.
   */
  sameContent?(rel: string, src: { contentHash?: string }, dst: TreeEntry): boolean | object;
  onProgress?(done: number, total: number): void;
  /**
   * The source tree as its manifest lists it (index present, engines without
   * cloneTree): the source is then not walked. Each entry must describe the file at
   * `srcRoot/rel` (snapshots are immutable); owners and access times are read from
   * the source only for entries whose metadata is applied.
   */
  sourceEntries?: readonly SourceEntry[];
  /** The destination's walk, already started by the caller without a filter (see startWalk). */
  destWalk?: PendingWalk;
  /**
   * sourceEntries and the worktree state in the index's encoding, for the addon's
   * restorePlan (it then takes the decisions sameContent would, without an object per
   * entry): the manifest's chunks (record i is sourceEntries[i]), the state's chunks
   * (null: none; record i is stateEntries()[i]) and the state's clock probe.
   */
  raw?: { target: Buffer; state: Buffer | null; probeNs: bigint; stateEntries(): readonly object[] };
  /**
   * A folder on the destination's filesystem that only JVS writes (the repository's
   * `.jvs/tmp`). New files, links and cloned folders are made in a private folder there
   * and renamed into place through the destination's fd, so nobody writing into the
   * destination meanwhile can redirect where they are made. Without it (or on another
   * filesystem) they are made in a temp folder inside the destination.
   */
  stageDir?: string;
}

/** What applyTree needs of a source entry when it comes from a manifest. */
export interface SourceEntry {
  rel: string;
  type: 'dir' | 'file' | 'symlink';
  mode: number;
  size: number;
  mtimeNs: bigint;
  target?: string;
  linkOf?: string;
  contentHash?: string;
}

/** A source entry with its stat, however it was learnt (and the manifest's entry when listed). */
type Source = TreeEntry & { linkOf?: string; target?: string; listed?: SourceEntry };

const TYPE_BITS = { dir: 0o040000n, file: 0o100000n, symlink: 0o120000n } as const;
/** What a walked (unlisted) source tells sameContent: no hash; it looks the manifest up itself. */
const NO_HASH: { contentHash?: string } = {};

/**
 * The stat of a manifest-listed file: type, permission bits, size and mtime from the
 * manifest; everything else from one lstat of the source file, made on first need.
 * Folders and symlinks (whose times manifests do not keep) read the lstat for all.
 */
class ListedStat implements EntryStat {
  private st?: fs.BigIntStats;
  readonly nlink = 1n;
  // Made on first use: most listed files are only compared, through their manifest entry.
  constructor(private readonly root: string, private readonly e: SourceEntry) {}
  private lstat(): fs.BigIntStats {
    if (this.st) return this.st;
    const st = fs.lstatSync(fsPath(under(this.root, this.e.rel)), { bigint: true });
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
    if (type !== this.e.type) {
      // The snapshot's entry was swapped (e.g. a folder for a link to elsewhere): never followed.
      const what = `snapshot entry ${JSON.stringify(this.e.rel)} is a ${type} where the manifest lists a ${this.e.type}`;
      throw new JvsError(type === 'symlink' ? 'E_PATH_ESCAPE' : 'E_PAYLOAD_HASH_MISMATCH', `${what}; restore never follows or copies it, and nothing in the worktree was changed`, {
        hint: '`jvs verify --all` lists the damaged snapshots; restore another snapshot',
      });
    }
    return (this.st = st);
  }
  get mode(): bigint {
    return this.e.type === 'file' ? TYPE_BITS.file | BigInt(this.e.mode) : this.lstat().mode;
  }
  get size(): bigint {
    return this.e.type === 'file' ? BigInt(this.e.size) : this.lstat().size;
  }
  get mtimeNs(): bigint {
    return this.e.type === 'file' ? this.e.mtimeNs : this.lstat().mtimeNs;
  }
  get uid(): bigint { return this.lstat().uid; }
  get gid(): bigint { return this.lstat().gid; }
  get atimeNs(): bigint { return this.lstat().atimeNs; }
  get ctimeNs(): bigint { return this.lstat().ctimeNs; }
  get ino(): bigint { return this.lstat().ino; }
  get dev(): bigint { return this.lstat().dev; }
  isFile(): boolean { return this.e.type === 'file'; }
  isDirectory(): boolean { return this.e.type === 'dir'; }
  isSymbolicLink(): boolean { return this.e.type === 'symlink'; }
}

/** A manifest's entry as a source entry (its stat read from the source only if needed). */
function listedSource(srcRoot: string, e: SourceEntry): Source {
  const o: Source = { rel: e.rel, type: e.type, stat: new ListedStat(srcRoot, e), listed: e };
  if (e.linkOf !== undefined) o.linkOf = e.linkOf;
  if (e.target !== undefined) o.target = e.target;
  return o;
}

/**
 * The source entries: from the manifest when given, else by walking (hard-link groups
 * found by inode). A listed folder the filter leaves out takes its subtree with it
 * (manifests are in walk order: a folder's entries follow it), as a walk would.
 */
function sourceOf(srcRoot: string, filter: WalkFilter | undefined, listed: readonly SourceEntry[] | undefined): Source[] {
  if (listed) {
    const out: Source[] = [];
    let skipped: string | undefined;
    for (const e of listed) {
      if (skipped !== undefined && e.rel.startsWith(skipped)) continue;
      skipped = undefined;
      if (filter && !filter.include!(e.rel, e.type === 'dir')) {
        if (e.type === 'dir') skipped = `${e.rel}/`;
        continue;
      }
      out.push(listedSource(srcRoot, e));
    }
    // A link group whose first path the filter left out: its members stand alone.
    const kept = new Set(out.filter((e) => e.linkOf !== undefined).map((e) => e.linkOf!));
    if (kept.size) {
      const present = new Set(out.filter((e) => kept.has(e.rel)).map((e) => e.rel));
      for (const e of out) if (e.linkOf !== undefined && !present.has(e.linkOf)) delete e.linkOf;
    }
    return out;
  }
  const firstOfInode = new Map<string, string>();
  return walkTree(srcRoot, filter ?? {}).entries.map((e) => {
    if (e.type !== 'file' || e.stat.nlink < 2n) return e;
    const key = `${e.stat.dev}:${e.stat.ino}`;
    const first = firstOfInode.get(key);
    if (first === undefined) {
      firstOfInode.set(key, e.rel);
      return e;
    }
    return { ...e, linkOf: first };
  });
}

export interface ApplyResult {
  written: number;
  removed: number;
  unchanged: number;
  bytesWritten: number;
  /**
   * The destination's stat of `rel` as the walk saw it, when this run did not change
   * it since (files and symlinks it wrote or re-stamped, and paths it created, give
   * undefined: lstat them). Folders answer with the walk's stat (their times move).
   */
  statOf?(rel: string): EntryStat | undefined;
  /** Files left untouched because sameContent answered with a record: that record, by path. */
  vouched?: Map<string, object>;
  /** Whether this run replaced or removed the entry at `rel` (its old inode left the tree). */
  replaced?(rel: string): boolean;
  /** A restore planned by the addon: the rels of the source entries its plan did not vouch for, in order. */
  unvouched?: string[];
  /** What could not be kept exactly (extended attributes, src/engines/xattrs.ts); set by the callers that copy them. */
  degraded?: string[];
}

const TMP_MARK = '.jvs-tmp-';
/** applyTree's decisions per plain file (0: not a plain file, decided in the loop). */
const WRITE = 1;
const SAME = 2;
const UNCHANGED = 3;
const baseName = (rel: string) => rel.slice(rel.lastIndexOf('/') + 1);
const isTmp = (rel: string) => rel.includes(TMP_MARK) && baseName(rel).includes(TMP_MARK);

/**
 * An error raised before applyTree changed the destination, marked so (details:
 * destination_unchanged) for callers that can then drop their intent.
 */
function beforeChanges(e: unknown): JvsError {
  const j = fromSystemError(e, 'preparing the restored files');
  return new JvsError(j.code, j.message, { hint: j.hint, cause: j.cause, details: { ...j.details, destination_unchanged: true } });
}

/**
 * Where an apply makes what it then renames into place: a private folder in the
 * caller's stageDir (same filesystem as the destination), else one inside the
 * destination. Entries are named by number; `abs` is for engines that take paths.
 */
class Stage {
  private made = false;
  private n = 0;
  private constructor(
    /** The tree holding the stage folder (its fd resolves every name). */
    readonly tree: TreeWriter,
    /** The stage folder's name in `tree` ('' when `tree` is the stage itself). */
    private readonly dir: string,
    private readonly own: boolean,
  ) {}

  static open(dst: TreeWriter, stageDir: string | undefined): Stage {
    if (stageDir && sameDevice(stageDir, dst.root)) {
      const abs = fs.mkdtempSync(path.join(stageDir, `.apply-${process.pid}-`));
      fs.chmodSync(abs, 0o700);
      const s = new Stage(treeWriter(abs), '', true);
      s.made = true;
      return s;
    }
    return new Stage(dst, `${TMP_MARK}${randomBytes(4).toString('hex')}`, false);
  }

  /** A fresh name in the stage (its folder made on first use). */
  name(): string {
    if (!this.made) {
      this.tree.mkdir(this.dir, 0o700);
      this.made = true;
    }
    const k = String(this.n++);
    return this.dir ? `${this.dir}/${k}` : k;
  }

  abs(name: string): string {
    return under(this.tree.root, name);
  }

  /** Move the staged `name` to `rel` of the destination (replacing what is there). */
  place(dst: TreeWriter, name: string, rel: string): void {
    dst.rename(name, rel, this.tree === dst ? undefined : this.tree);
  }

  /** Replace whatever is at `rel` with what `make` builds at the staged path it is given. */
  replace(dst: TreeWriter, rel: string, make: (name: string) => void): void {
    const name = this.name();
    try {
      make(name);
      this.place(dst, name, rel);
    } catch (e) {
      this.tree.remove(name);
      throw e;
    }
  }

  remove(): void {
    if (!this.made) return;
    if (this.own) {
      fs.rmSync(this.tree.root, { recursive: true, force: true });
      this.tree.close();
    } else this.tree.remove(this.dir);
    this.made = false;
  }
}

function sameDevice(a: string, b: string): boolean {
  try {
    return fs.statSync(a).dev === fs.statSync(b).dev;
  } catch {
    return false;
  }
}

/**
 * Whether the folder at src[i] can be cloned whole: no file below it is a hard link
 * (a link group may reach outside the folder, and applyTree joins groups itself).
 * Entries below a folder follow it contiguously in walk order.
 */
function cloneable(src: readonly TreeEntry[], i: number): boolean {
  const prefix = `${src[i]!.rel}/`;
  for (let j = i + 1; j < src.length && src[j]!.rel.startsWith(prefix); j++) {
    if (src[j]!.type === 'file' && src[j]!.stat.nlink > 1n) return false;
  }
  return true;
}

/**
 * A destination holding nothing of the source (a restore into an emptied worktree): one
 * clone of the whole source into the stage, whose entries are then renamed into place.
 * Hard links within the tree survive (the clone re-joins them). A crash leaves the
 * stage, which the next run (or doctor's clean_tmp) removes, and converges.
 */
function cloneIntoEmpty(srcRoot: string, dst: TreeWriter, stage: Stage, clone: (src: string, dst: string) => void, filter: WalkFilter, res: ApplyResult, opts: ApplyOptions): ApplyResult {
  const folder = stage.name();
  const m = materializeByClone(srcRoot, stage.abs(folder), clone, filter, { hash: false });
  // Names as bytes: one that is not UTF-8 must keep them (format/nameBytes.ts).
  for (const b of fs.readdirSync(fsPath(stage.abs(folder)), { encoding: 'buffer' })) {
    const name = nameFromBytes(b);
    stage.place(dst, `${folder}/${name}`, name);
  }
  res.written = m.entries.filter((e) => e.type === 'file').length;
  res.bytesWritten = m.bytes;
  opts.onProgress?.(m.bytes, m.bytes);
  return res;
}

/** Replace whatever is at `rel` with what `make` puts at a temp sibling (a symlink or a hard link), atomically. */
function replaceBySibling(dst: TreeWriter, rel: string, make: (tmp: string) => void): void {
  const slash = rel.lastIndexOf('/');
  const tmp = `${rel.slice(0, slash + 1)}.${rel.slice(slash + 1)}${TMP_MARK}${randomBytes(4).toString('hex')}`;
  try {
    make(tmp);
    dst.rename(tmp, rel);
  } catch (e) {
    dst.remove(tmp);
    throw e;
  }
}

/**
 * Make the tree `dstRoot` equal to `srcRoot` in place, touching only entries that
 * differ. Every file is replaced by rename of a fully written sibling, so a crash
 * leaves each path either old or new, and re-running converges (this is how doctor
 * finishes an interrupted restore). Paths the filter excludes are neither read from
 * the source nor touched in the destination. Files are never hard-linked from the
 * source: each is copied or cloned by the engine; with a whole-tree cloning engine
 * (juicefs-clone) a folder missing from the destination is cloned in one command.
 */
export function applyTree(srcRootIn: string, dstRootIn: string, engine: Engine, opts: ApplyOptions = {}): ApplyResult {
  const srcRoot = path.resolve(srcRootIn);
  const dstRoot = path.resolve(dstRootIn);
  const skip = opts.skipNames;
  const filter: WalkFilter = {
    include: (rel, isDir) => {
      if (skip && skip.has(baseName(rel))) return false;
      return opts.include ? opts.include(rel, isDir) : true;
    },
  };
  // A manifest never lists skipped names (.READY); with nothing to select either, no filter is asked.
  const listed = engine.cloneTree ? undefined : opts.sourceEntries;
  const whole = !opts.include || opts.include === takesEverything;
  const res: ApplyResult = { written: 0, removed: 0, unchanged: 0, bytesWritten: 0 };
  const dstByRel = new Map<string, TreeEntry>();
  const vouched = (res.vouched = new Map<string, object>());
  let src: Source[];
  let total = 0;
  let done = 0;
  const removals: string[] = [];
  const replacedRels = new Set<string>();
  res.replaced = (rel) => {
    for (let p = rel; ; p = p.slice(0, p.lastIndexOf('/'))) {
      if (replacedRels.has(p)) return true;
      if (!p.includes('/')) break;
    }
    return removals.some((r) => rel === r || rel.startsWith(`${r}/`));
  };
  fs.mkdirSync(dstRoot, { recursive: true });
  const dst = treeWriter(dstRoot);
  let stage: Stage | undefined;
  try {
    stage = Stage.open(dst, opts.stageDir);
    return applyInto(dst, stage);
  } finally {
    stage?.remove();
    dst.close();
  }

  function applyInto(dst: TreeWriter, stage: Stage): ApplyResult {
    // The usual restore (whole tree listed by its manifest, worktree scanned, an index):
    // the addon decides which files stay as they are and what goes; only the rest is
    // looked at here. JVS_NO_CLASSIFY=1 keeps the JavaScript path (tests compare both).
    const planned = listed && whole && opts.destWalk?.scan && opts.raw && process.env.JVS_NO_CLASSIFY !== '1' ? native()?.restorePlan?.(opts.destWalk.scan, opts.raw.target, opts.raw.state, opts.raw.probeNs) ?? undefined : undefined;
    if (planned && listed) {
      tracePhase('apply: plan');
      for (let j = 0; j < planned.removeRels.length; j++) removals.push(planned.removeRels[j]!);
      const recorded = opts.raw!.stateEntries();
      src = [];
      for (let i = 0; i < listed.length; i++) {
        const e = listed[i]!;
        if (e.type === 'file') total += e.size;
        const v = planned.vouched[i]!;
        if (v >= 0) {
          res.unchanged++;
          vouched.set(e.rel, recorded[v]!);
          done += e.size;
          continue;
        }
        src.push(listedSource(srcRoot, e));
        const at = planned.destIndex[i]!;
        if (at >= 0) dstByRel.set(e.rel, { rel: e.rel, type: e.type, stat: scannedStat(planned.destStats, at) });
      }
      if (done) opts.onProgress?.(done, total);
      res.unvouched = src.map((s) => s.rel);
    } else {
      src = sourceOf(srcRoot, listed && whole ? undefined : filter, listed);
      tracePhase('apply: source listing');
      // Leftover temp files of an interrupted run are always removed.
      const dstAll = (opts.destWalk && whole ? opts.destWalk.result() : walkTree(dstRoot, { include: (rel, isDir) => isTmp(rel) || (opts.include ? opts.include(rel, isDir) : true) })).entries;
      tracePhase('apply: destination walk');
      const srcByRel = new Map<string, Source>();
      for (const e of src) srcByRel.set(e.rel, e);

      // Removals (made first, once the copies are staged): entries absent from the source, or of another type.
      let removedPrefix: string | undefined;
      for (const d of dstAll) {
        if (removedPrefix && d.rel.startsWith(removedPrefix)) continue;
        const s = srcByRel.get(d.rel);
        if (!s || s.type !== d.type || isTmp(d.rel)) {
          removals.push(d.rel);
          if (d.type === 'dir') removedPrefix = d.rel + '/';
          continue;
        }
        dstByRel.set(d.rel, d);
      }
      total = src.reduce((n, e) => n + (e.type === 'file' ? (e.listed?.size ?? Number(e.stat.size)) : 0), 0);
    }

    // What happens to each plain file, decided before anything changes: UNCHANGED (as
    // it is), SAME (content kept, metadata set) or WRITE; with `sameAs` the record that
    // vouched for it. Listed folders and symlinks are checked against the snapshot now.
    const act = new Uint8Array(src.length);
    const sameAs: Array<object | undefined> = [];
    // Listed sources (a manifest): every file to write is copied into a private stage in
    // the destination and checked against the manifest first (copyVerified), so a
    // damaged or swapped snapshot file stops the apply before the destination changes.
    const staged = new Map<number, string>();
    try {
      for (let i = 0; i < src.length; i++) {
        const s = src[i]!;
        if (s.type !== 'file') {
          if (s.listed) void s.stat.mode; // ListedStat: lstat now, refusing a swapped entry
          continue;
        }
        if (s.linkOf !== undefined) continue;
        const d = dstByRel.get(s.rel);
        if (!d) {
          act[i] = WRITE;
          continue;
        }
        // The common case first, with nothing built for it: a file the worktree already
        // holds with the snapshot's content, mode and mtime (compared with the manifest's
        // numbers when the source is listed).
        const l = s.listed;
        const size = l ? l.size : Number(s.stat.size);
        const same = Number(d.stat.size) === size && d.stat.nlink === 1n ? opts.sameContent?.(s.rel, l ?? NO_HASH, d) : undefined;
        if (typeof same === 'object') sameAs[i] = same;
        act[i] = !same ? WRITE : permBits(d.stat) === (l ? l.mode : permBits(s.stat)) && d.stat.mtimeNs === (l ? l.mtimeNs : s.stat.mtimeNs) ? UNCHANGED : SAME;
        if (act[i] === SAME && l) void s.stat.uid; // its metadata is copied later: the entry is checked now
      }
      tracePhase('apply: decisions');
      if (listed && !engine.cloneTree) {
        const jobs: VerifiedJob[] = [];
        for (let i = 0; i < src.length; i++) {
          if (act[i] !== WRITE) continue;
          const l = src[i]!.listed!;
          if (!l.contentHash) continue; // a manifest without hashes (none are written so): copied as before
          const name = stage.name();
          jobs.push({ rel: l.rel, dst: name, mode: l.mode, size: l.size, mtimeNs: l.mtimeNs, hash: l.contentHash });
          staged.set(i, name);
        }
        if (jobs.length) {
          // Made through the stage's root fd (hashMany opens each name beneath it).
          copyVerified(jobs, engine, srcRoot, stage.tree.root, (bytes) => {
            done += bytes;
            opts.onProgress?.(done, total);
          });
          tracePhase('apply: staged');
        }
      }
    } catch (e) {
      throw beforeChanges(e);
    }

    faultPoint('apply.staged');
    for (const r of removals) {
      dst.remove(r);
      res.removed++;
    }
    tracePhase('apply: removals');
    if (engine.cloneTree && dstByRel.size === 0 && src.length > 0) return cloneIntoEmpty(srcRoot, dst, stage, engine.cloneTree.bind(engine), filter, res, opts);

    const dirs: Array<{ rel: string; stat: EntryStat }> = [];
    let clonedPrefix: string | undefined;
    const changed = new Set<string>();
    res.statOf = (rel) => (changed.has(rel) ? undefined : dstByRel.get(rel)?.stat);
    for (let i = 0; i < src.length; i++) {
      const s = src[i]!;
      if (clonedPrefix && s.rel.startsWith(clonedPrefix)) continue;
      const d = dstByRel.get(s.rel);
      if (act[i] === UNCHANGED) {
        res.unchanged++;
        const same = sameAs[i];
        if (same) vouched.set(s.rel, same);
        if (opts.onProgress) {
          done += s.listed ? s.listed.size : Number(s.stat.size);
          opts.onProgress(done, total);
        }
        continue;
      }
      const from = under(srcRoot, s.rel);
      switch (s.type) {
        case 'dir':
          if (!d && engine.cloneTree && cloneable(src, i)) {
            // A folder the destination lacks entirely: one whole-tree clone (juicefs clone)
            // into a temp sibling, renamed in once complete.
            const sub: WalkFilter = { include: (rel, isDir) => filter.include!(`${s.rel}/${rel}`, isDir) };
            let m: MaterializeResult | undefined;
            stage.replace(dst, s.rel, (name) => (m = materializeByClone(from, stage.abs(name), (a, b) => engine.cloneTree!(a, b), sub, { hash: false })));
          replacedRels.add(s.rel);
            const files = m!.entries.filter((e) => e.type === 'file');
            res.written += files.length;
            res.bytesWritten += m!.bytes;
            done += m!.bytes;
            opts.onProgress?.(done, total);
            clonedPrefix = `${s.rel}/`;
            break;
          }
          if (!d) dst.mkdir(s.rel, 0o700);
          dirs.push({ rel: s.rel, stat: s.stat });
          break;
        case 'symlink': {
          const target = s.target ?? readLink(from);
          if (d && readLink(under(dstRoot, s.rel)) === target) {
            res.unchanged++;
          } else {
            replaceBySibling(dst, s.rel, (tmp) => dst.symlink(target, tmp));
            replacedRels.add(s.rel);
            res.written++;
          }
          dst.setMetadata(s.rel, s.stat, true);
          changed.add(s.rel);
          break;
        }
        case 'file': {
          const first = s.linkOf;
          if (first !== undefined) {
            // A hard link the user made inside the payload: restore it as a link.
            if (!(d && d.stat.ino === fs.lstatSync(fsPath(under(dstRoot, first)), { bigint: true }).ino)) {
              replaceBySibling(dst, s.rel, (tmp) => dst.link(first, tmp));
              replacedRels.add(s.rel);
              res.written++;
            } else res.unchanged++;
            changed.add(s.rel); // a link's ctime moves with its group's
            break;
          }
          if (act[i] === SAME && d) {
            res.unchanged++;
            if (permBits(d.stat) !== permBits(s.stat) || d.stat.mtimeNs !== s.stat.mtimeNs) {
              dst.setMetadata(s.rel, s.stat, false);
              changed.add(s.rel);
            }
          } else {
            changed.add(s.rel);
            replacedRels.add(s.rel);
            const ready = staged.get(i);
            if (ready) stage.place(dst, ready, s.rel); // checked, with its metadata: in place at once
            else {
              stage.replace(dst, s.rel, (name) => {
                engine.copyFile(from, stage.abs(name), permBits(s.stat), false);
                stage.tree.setMetadata(name, s.stat, false);
              });
            }
            res.written++;
            res.bytesWritten += Number(s.stat.size);
            if (ready) break; // its bytes were counted while staged
          }
          done += Number(s.stat.size);
          opts.onProgress?.(done, total);
          break;
        }
      }
    }
    for (let i = dirs.length - 1; i >= 0; i--) dst.setMetadata(dirs[i]!.rel, dirs[i]!.stat, false);
    return res;
  }
}

import fs from 'node:fs';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type { Layout } from '../repo/layout.js';
import { chunkEntries, decodeEntries, sameEncoding, type IndexedEntry } from './manifestCodec.js';

/**
 * `.jvs/index.sqlite`: a cache, never a source of truth. Everything in it can be
 * rebuilt from descriptors and payloads (rebuildIndex), so every failure to open,
 * read or write it — missing module, damaged file, read-only repository — degrades
 * to "no index" (slower: files are re-read) and a damaged file is deleted and
 * started over.
 *
 * Tables (schema 2):
 *   meta(key, value)                       schema version
 *   catalog(id, size, mtime_ns, descriptor) descriptor text by snapshot id, with the
 *                                          file's size/mtime to notice edits
 *   chunks(hash, data)                     manifest chunks, content-addressed
 *                                          (manifestCodec.ts); written once, never updated
 *   refs(hash, n)                          how many lists use each chunk, apart from the
 *                                          chunks: a new snapshot's manifest adds a use to
 *                                          each of its ~160 chunks (10,000 files), and in
 *                                          schema 1, where the count sat in the chunk's own
 *                                          row (one ~6 KB row per page), that rewrote ~160
 *                                          pages and journaled them: 157 page writes per
 *                                          snapshot, 80 ms through JuiceFS's FUSE mount,
 *                                          and 16,000 per snapshot of a million files. The
 *                                          counts are ~40-byte rows, ~100 to a page.
 *   lists(owner, chunks, entries, probe_ns, basis)
 *                                          one row per manifest: `snapshot:<id>` (what a
 *                                          snapshot holds, with its sources' stats) or
 *                                          `worktree:<name>` (what the worktree held after
 *                                          the last snapshot/restore/fork); `chunks` is
 *                                          the concatenation of 32-byte chunk hashes
 */
export const SCHEMA_VERSION = '2';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS catalog(id TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns TEXT NOT NULL, descriptor TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(hash BLOB PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS refs(hash BLOB PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lists(owner TEXT PRIMARY KEY, chunks BLOB NOT NULL, entries INTEGER NOT NULL, probe_ns TEXT NOT NULL, basis TEXT);
`;

export interface StoredList {
  entries: IndexedEntry[];
  /** Filesystem clock when the recording stat walk began (see changeDetect.ts). */
  probeNs: bigint;
  /** Snapshot the entries correspond to (worktree states). */
  basis?: string;
  /**
   * getList only: the decoded chunks the entries came from, in order. Decoded chunks are
   * shared, never-mutated objects (kept across opens in this process), so a list made of
   * the very same objects as an earlier one holds the same entries (manifests.ts uses
   * this to check a manifest once per process).
   */
  parts?: readonly object[];
  /** getList only: the chunks' bytes, in order (what `entries` were decoded from; rootHashOfRecords hashes them). */
  records?: readonly Buffer[];
}

export interface CatalogRow {
  id: string;
  size: number;
  mtimeNs: string;
  descriptor: string;
}

let Driver: typeof BetterSqlite3 | null | undefined;
/**
 * The driver's compiled part, loaded straight from where its install builds it: left to
 * itself, better-sqlite3 finds it with the `bindings` package, which probes a dozen
 * paths first (a few milliseconds of every command that opens the index).
 */
let binding: string | undefined;

/**
 * better-sqlite3, loaded on first use only (start-up of `jvs --version` stays light).
 * In the CommonJS bundle `require` is the bundle's own, and esbuild bundles the
 * package's JavaScript here (scripts/bundle.mjs), run only when first asked for and
 * compiled from the bundle's code cache: loading its dozen files through Node's module
 * loader cost 3.5-6 ms of every snapshot, restore and status. The ES modules in dist/
 * (no `require`) load it from node_modules as before. Its addon is loaded either way
 * only when a database is opened.
 */
function driver(): typeof BetterSqlite3 | null {
  if (Driver !== undefined) return Driver;
  const req = createRequire(import.meta.url);
  try {
    Driver = (typeof require === 'function' ? require('better-sqlite3') : req('better-sqlite3')) as typeof BetterSqlite3;
  } catch {
    Driver = null;
  }
  try {
    binding = req.resolve('better-sqlite3/build/Release/better_sqlite3.node');
  } catch {
    binding = undefined; // built elsewhere: the driver finds it itself
  }
  return Driver;
}

const isCorruption = (e: unknown) => /^SQLITE_(CORRUPT|NOTADB)/.test(String((e as { code?: string })?.code ?? ''));

/** Whether the database header says WAL (file format bytes 18 and 19 are 2). */
function isWalFile(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const b = Buffer.alloc(2);
      return fs.readSync(fd, b, 0, 2, 18) === 2 && b[0] === 2 && b[1] === 2;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

/**
 * Schema 1 to 2 in place, in one transaction: the counts move to their own table and
 * the chunks are copied without them. An index is a cache, but starting it over would
 * make the next restore of every snapshot hash its payload again (2 TB projects).
 */
export function migrateFrom1(db: BetterSqlite3.Database): void {
  // IMMEDIATE: one process migrates; another that read '1' meanwhile waits here, then finds '2'.
  db.transaction(() => {
    if ((db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string } | undefined)?.value !== '1') return;
    db.exec(`
      CREATE TABLE refs(hash BLOB PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO refs(hash, n) SELECT hash, refs FROM chunks WHERE refs > 0;
      CREATE TABLE chunks2(hash BLOB PRIMARY KEY, data BLOB NOT NULL);
      INSERT INTO chunks2(hash, data) SELECT hash, data FROM chunks WHERE refs > 0;
      DROP TABLE chunks;
      ALTER TABLE chunks2 RENAME TO chunks;
    `);
    db.prepare("UPDATE meta SET value = ? WHERE key = 'schema'").run(SCHEMA_VERSION);
  }).immediate();
}

function removeIndexFiles(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) fs.rmSync(f, { force: true });
}

interface StoredChunk {
  hash: Buffer;
  data: Buffer;
  entries: IndexedEntry[];
}

/**
 * Chunks decoded by any handle of this process, by content hash (so never stale):
 * a long-lived process (the mount daemon running an agent loop) decodes each
 * manifest chunk once, not once per operation. Forgotten wholesale past a budget.
 */
const recentChunks = new Map<string, StoredChunk>();
let recentEntries = 0;
const RECENT_MAX_ENTRIES = 500_000;
function remember(key: string, c: StoredChunk): void {
  if (recentEntries + c.entries.length > RECENT_MAX_ENTRIES) {
    recentChunks.clear();
    recentEntries = 0;
  }
  recentChunks.set(key, c);
  recentEntries += c.entries.length;
}

export class IndexDb {
  private readonly st: ReturnType<IndexDb['prepare']>;
  /** Set when a query found the file damaged: it was deleted, this handle is dead. */
  private dead = false;
  /** Chunks decoded by this handle (a snapshot's manifest and its worktree state share most). Entries are never mutated. */
  private readonly decoded = new Map<string, StoredChunk>();
  /** The same chunks by the path of their first entry: putList reuses one whose entries are unchanged. */
  private readonly decodedByFirst = new Map<string, StoredChunk>();
  private lastChunks: { list: readonly IndexedEntry[]; chunks: ReturnType<typeof chunkEntries> } | undefined;
  /** Chunk bytes getListRaw read, by key, for getList to decode without reading them again. */
  private readonly fetched = new Map<string, Buffer>();

  private constructor(private readonly db: BetterSqlite3.Database, private readonly file: string) {
    this.st = this.prepare();
  }

  /** Open (creating when missing) the index of `layout`, or undefined when no index can be had. */
  static open(layout: Layout): IndexDb | undefined {
    if (process.env.JVS_NO_INDEX === '1') return undefined;
    const D = driver();
    if (!D) return undefined;
    const file = layout.indexDb;
    for (let attempt = 0; attempt < 2; attempt++) {
      let db: BetterSqlite3.Database | undefined;
      try {
        db = new D(file, { timeout: 10_000, ...(binding ? { nativeBinding: binding } : {}) });
        // A cache: losing the last transaction to a power cut is fine, losing consistency
        // is not (the journal keeps it). No WAL: WAL's shared index is a memory-mapped
        // `-shm` file, and on a nearly full filesystem whose blocks are smaller than a page
        // (a small ext4) a store into a page SQLite could not fully allocate kills the
        // process with SIGBUS instead of failing. A rollback journal maps nothing, so a
        // full disk is SQLITE_FULL (the index is skipped, the command goes on or fails
        // with E_NO_SPACE). PERSIST keeps the journal's blocks between transactions
        // instead of freeing and reallocating them. WAL with locking_mode=EXCLUSIVE
        // (wal-index on the heap) was the other way out, but it shuts every other
        // process out of the index for as long as a snapshot holds it open.
        // docs/design-notes.md has the measurements.
        // A file still in WAL mode (made by an earlier version) is switched over with the
        // wal-index on the heap (exclusive locking before the first access), so even that
        // one open maps no `-shm`.
        const wasWal = isWalFile(file);
        if (wasWal) db.pragma('locking_mode = EXCLUSIVE');
        db.pragma('journal_mode = PERSIST');
        if (wasWal) db.pragma('locking_mode = NORMAL');
        db.pragma('journal_size_limit = 8388608');
        db.pragma('synchronous = NORMAL');
        const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").get();
        const version = hasMeta ? (db.prepare("SELECT value FROM meta WHERE key='schema'").get() as { value: string } | undefined)?.value : undefined;
        if (version === '1') migrateFrom1(db);
        else if (version !== SCHEMA_VERSION) {
          if (version !== undefined) {
            // Another schema: a cache, so start over rather than migrate.
            db.close();
            removeIndexFiles(file);
            continue;
          }
          db.transaction(() => {
            db!.exec(SCHEMA);
            db!.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?)").run(SCHEMA_VERSION);
          })();
        }
        return new IndexDb(db, file);
      } catch (e) {
        try { db?.close(); } catch { /* already unusable */ }
        const code = (e as NodeJS.ErrnoException).code ?? '';
        // Not damage (permissions, contention, a full disk, an I/O error): keep the file, go without.
        if (code === 'EACCES' || code === 'EROFS' || code === 'ENOSPC' || /SQLITE_(READONLY|CANTOPEN|BUSY|PERM|FULL|IOERR)/.test(code)) return undefined;
        // Damaged (not a database, corrupt pages, half-written schema): a cache, so start over.
        removeIndexFiles(file);
      }
    }
    return undefined;
  }

  private prepare() {
    const db = this.db;
    return {
      getList: db.prepare('SELECT chunks, probe_ns, basis FROM lists WHERE owner = ?'),
      // A chunk's row is written when it is new and never again; only its count moves.
      addChunk: db.prepare('INSERT INTO chunks(hash, data) VALUES (?, ?) ON CONFLICT(hash) DO NOTHING'),
      addRefs: db.prepare('INSERT INTO refs(hash, n) VALUES (?, ?) ON CONFLICT(hash) DO UPDATE SET n = n + excluded.n'),
      unref: db.prepare('UPDATE refs SET n = n - ? WHERE hash = ?'),
      dropRefsIfUnused: db.prepare('DELETE FROM refs WHERE hash = ? AND n <= 0'),
      dropChunkIfUnused: db.prepare('DELETE FROM chunks WHERE hash = @h AND NOT EXISTS (SELECT 1 FROM refs WHERE hash = @h)'),
      putList: db.prepare('INSERT OR REPLACE INTO lists(owner, chunks, entries, probe_ns, basis) VALUES (?, ?, ?, ?, ?)'),
      delList: db.prepare('DELETE FROM lists WHERE owner = ?'),
      owners: db.prepare('SELECT owner FROM lists').pluck(),
      catalogAll: db.prepare('SELECT id, size, mtime_ns AS mtimeNs, descriptor FROM catalog'),
      catalogPut: db.prepare('INSERT OR REPLACE INTO catalog(id, size, mtime_ns, descriptor) VALUES (?, ?, ?, ?)'),
      catalogDel: db.prepare('DELETE FROM catalog WHERE id = ?'),
    };
  }

  /** A small fact kept in the meta table (see xattrFlags.ts); undefined when unknown or unreadable. */
  getNote(key: string): string | undefined {
    return this.guard(() => (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value, undefined);
  }

  setNote(key: string, value: string): void {
    this.guard(() => void this.db.prepare('INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)').run(key, value), undefined);
  }

  close(): void {
    if (!this.dead) this.db.close();
    this.dead = true;
  }

  /**
   * Run `fn` against the database; any failure yields `fallback` (the caller then does
   * the slow, index-free thing). A damaged file is deleted so the next run rebuilds it.
   */
  guard<T>(fn: () => T, fallback: T): T {
    if (this.dead) return fallback;
    try {
      return fn();
    } catch (e) {
      if (isCorruption(e)) {
        this.close();
        removeIndexFiles(this.file);
      }
      return fallback;
    }
  }

  getList(owner: string): StoredList | undefined {
    return this.guard(() => {
      const row = this.st.getList.get(owner) as { chunks: Buffer; probe_ns: string; basis: string | null } | undefined;
      if (!row) return undefined;
      const keys = this.loadChunks(row.chunks);
      const entries: IndexedEntry[] = [];
      const parts: object[] = [];
      const records: Buffer[] = [];
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        let part = this.decoded.get(key);
        if (!part) {
          part = recentChunks.get(key);
          if (!part) {
            const data = this.fetched.get(key);
            if (!data) return undefined; // inconsistent: treat as missing
            part = { hash: Buffer.from(row.chunks.subarray(32 * i, 32 * i + 32)), data, entries: decodeEntries(data) };
            remember(key, part);
          }
          this.decoded.set(key, part);
          if (part.entries.length) this.decodedByFirst.set(part.entries[0]!.rel, part);
        }
        parts.push(part);
        records.push(part.data);
        for (const e of part.entries) entries.push(e);
      }
      return { entries, probeNs: BigInt(row.probe_ns), ...(row.basis ? { basis: row.basis } : {}), parts, records };
    }, undefined);
  }

  /**
   * A list as stored, not decoded: its chunk keys, its chunks' bytes concatenated in
   * list order (record i is getList's entry i: what the addon's classify parses) and
   * its probe. The chunks are kept, so a later getList of it reads nothing again.
   */
  getListRaw(owner: string): { chunks: Buffer; data: Buffer; probeNs: bigint } | undefined {
    return this.guard(() => {
      const row = this.st.getList.get(owner) as { chunks: Buffer; probe_ns: string } | undefined;
      if (!row) return undefined;
      const parts: Buffer[] = [];
      for (const key of this.loadChunks(row.chunks)) {
        const data = (this.decoded.get(key) ?? recentChunks.get(key))?.data ?? this.fetched.get(key);
        if (!data) return undefined; // inconsistent: treat as missing
        parts.push(data);
      }
      return { chunks: row.chunks, data: Buffer.concat(parts), probeNs: BigInt(row.probe_ns) };
    }, undefined);
  }

  /** The keys of a list's chunks (its 32-byte hashes, in order), every chunk's bytes now at hand: decoded, recent or fetched. */
  private loadChunks(chunks: Buffer): string[] {
    const keys: string[] = [];
    const missing: Buffer[] = [];
    for (let o = 0; o < chunks.length; o += 32) {
      const key = chunks.toString('latin1', o, o + 32);
      keys.push(key);
      if (!this.decoded.has(key) && !recentChunks.has(key) && !this.fetched.has(key)) missing.push(chunks.subarray(o, o + 32));
    }
    this.fetchChunks(missing);
    return keys;
  }

  /** Statements reading n chunks at once, by n (one query instead of one per chunk). */
  private readonly chunkQueries = new Map<number, BetterSqlite3.Statement>();

  /** Reads these chunks into `fetched` with as few queries as SQLite's parameter limit allows. */
  private fetchChunks(hashes: Buffer[]): void {
    const MAX = 999; // SQLite's smallest default limit of host parameters
    for (let i = 0; i < hashes.length; i += MAX) {
      const part = hashes.slice(i, i + MAX);
      let q = this.chunkQueries.get(part.length);
      if (!q) this.chunkQueries.set(part.length, (q = this.db.prepare(`SELECT hash, data FROM chunks WHERE hash IN (${part.map(() => '?').join(',')})`)));
      for (const r of q.all(...part) as Array<{ hash: Buffer; data: Buffer }>) this.fetched.set(r.hash.toString('latin1'), r.data);
    }
  }

  /**
   * Cut and encode `entries` now (e.g. while background links run); a later putList
   * of the same array stores them without doing it again. Call again after changing
   * the array's entries.
   */
  prepareList(entries: readonly IndexedEntry[]): void {
    this.guard(() => {
      this.lastChunks = { list: entries, chunks: chunkEntries(entries, (part) => this.unchangedChunk(part)) };
    }, undefined);
  }

  /**
   * The encoded chunks of the list prepareList (or putList) cut last, when that was
   * `entries` (the same array, unchanged since): the bytes the index stores for it.
   */
  preparedRecords(entries: readonly IndexedEntry[]): Buffer[] | undefined {
    return this.lastChunks?.list === entries ? this.lastChunks.chunks.map((c) => c.data) : undefined;
  }

  /** Store (replace) a manifest; shared chunks are stored once. Returns false when the index could not take it. */
  putList(owner: string, list: StoredList): boolean {
    return this.guard(() => {
      // A snapshot's manifest and its worktree's state are usually the same list: cut it once.
      let chunks = this.lastChunks?.list === list.entries ? this.lastChunks.chunks : undefined;
      if (!chunks) this.lastChunks = { list: list.entries, chunks: (chunks = chunkEntries(list.entries, (part) => this.unchangedChunk(part))) };
      this.db.transaction(() => {
        const old = this.st.getList.get(owner) as { chunks: Buffer } | undefined;
        // Only chunks whose reference count changes are touched: replacing a worktree
        // state that differs in ten files costs ~20 statements, not one per chunk.
        const delta = new Map<string, { hash: Buffer; data?: Buffer; d: number }>();
        for (const c of chunks) {
          const k = c.hash.toString('latin1');
          const x = delta.get(k);
          if (x) x.d++;
          else delta.set(k, { hash: c.hash, data: c.data, d: 1 });
        }
        if (old) {
          for (let o = 0; o < old.chunks.length; o += 32) {
            const h = old.chunks.subarray(o, o + 32);
            const k = h.toString('latin1');
            const x = delta.get(k);
            if (x) x.d--;
            else delta.set(k, { hash: h, d: -1 });
          }
        }
        for (const x of delta.values()) {
          if (x.d > 0) {
            this.st.addChunk.run(x.hash, x.data!);
            this.st.addRefs.run(x.hash, x.d);
          } else if (x.d < 0) this.dropUse(x.hash, -x.d);
        }
        this.st.putList.run(owner, Buffer.concat(chunks.map((c) => c.hash)), list.entries.length, list.probeNs.toString(), list.basis ?? null);
      })();
      return true;
    }, false);
  }

  /** A chunk this handle read whose encoding equals what `part` would encode to (then it need not be encoded again). */
  private unchangedChunk(part: readonly IndexedEntry[]): StoredChunk | undefined {
    const c = part.length ? this.decodedByFirst.get(part[0]!.rel) : undefined;
    if (!c || c.entries.length !== part.length) return undefined;
    for (let i = 0; i < part.length; i++) if (!sameEncoding(part[i]!, c.entries[i]!)) return undefined;
    return c;
  }

  deleteList(owner: string): void {
    this.guard(() => {
      this.db.transaction(() => {
        const old = this.st.getList.get(owner) as { chunks: Buffer } | undefined;
        if (!old) return;
        for (let o = 0; o < old.chunks.length; o += 32) this.dropUse(old.chunks.subarray(o, o + 32), 1);
        this.st.delList.run(owner);
      })();
    }, undefined);
  }

  /** `uses` fewer uses of chunk `hash`; the chunk goes with its last use. */
  private dropUse(hash: Buffer, uses: number): void {
    this.st.unref.run(uses, hash);
    this.st.dropRefsIfUnused.run(hash);
    this.st.dropChunkIfUnused.run({ h: hash });
  }

  listOwners(): string[] {
    return this.guard(() => this.st.owners.all() as string[], []);
  }

  catalogRows(): CatalogRow[] | undefined {
    return this.guard(() => this.st.catalogAll.all() as CatalogRow[], undefined);
  }

  /** Apply catalog changes in one transaction. */
  updateCatalog(put: CatalogRow[], remove: string[]): void {
    if (!put.length && !remove.length) return;
    this.guard(() => {
      this.db.transaction(() => {
        for (const r of put) this.st.catalogPut.run(r.id, r.size, r.mtimeNs, r.descriptor);
        for (const id of remove) this.st.catalogDel.run(id);
      })();
    }, undefined);
  }

  /** Run several writes as one transaction (one journal commit). */
  transaction(fn: () => void): void {
    this.guard(() => this.db.transaction(fn)(), undefined);
  }
}

export const snapshotOwner = (id: string) => `snapshot:${id}`;
export const worktreeOwner = (name: string) => `worktree:${name}`;

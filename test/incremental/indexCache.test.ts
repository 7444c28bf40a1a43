import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IndexDb, migrateFrom1 } from '../../src/index/indexDb.js';
import { chunkEntries, decodeEntries, encodeEntries, sameEncoding, type IndexedEntry } from '../../src/index/manifestCodec.js';
import { getSnapshotManifest } from '../../src/index/manifests.js';
import { rebuildIndex } from '../../src/index/rebuildIndex.js';
import { Layout } from '../../src/repo/layout.js';
import { createSnapshot } from '../../src/snapshot/createSnapshot.js';
import { readTree, writeFiles } from '../helpers/tmp.js';
import { newRepo, restore, snap, status, verifyAll } from './helpers.js';

function entry(rel: string, i: number, extra: Partial<IndexedEntry> = {}): IndexedEntry {
  return { rel, type: 'file', mode: 0o644, size: i, mtimeNs: 1_700_000_000_123_456_789n + BigInt(i), ctimeNs: 1_700_000_001_000_000_000n, dev: 2049n, ino: 1000n + BigInt(i), contentHash: i.toString(16).padStart(64, '0'), ...extra };
}

describe('manifest storage', () => {
  it('round-trips every field, including symlink targets, link groups and non-ASCII names', () => {
    const list: IndexedEntry[] = [
      { rel: 'dir', type: 'dir', mode: 0o2755, size: 0, mtimeNs: 0n, ctimeNs: 0n, dev: 0n, ino: 0n },
      entry('dir/ünïcødé ✓.txt', 1),
      entry('dir/alias', 1, { linkOf: 'dir/ünïcødé ✓.txt' }),
      { rel: 'ln', type: 'symlink', mode: 0o777, size: 0, mtimeNs: 0n, ctimeNs: 0n, dev: 0n, ino: 0n, target: '../'.repeat(30000) + 'x' },
      entry('big', 2 ** 40, { ino: 2n ** 63n + 5n }),
    ];
    expect(decodeEntries(encodeEntries(list))).toEqual(list);
  });

  it('keeps no stats for folders and symlinks, so a restore touching them leaves chunks shared', () => {
    const dir: IndexedEntry = { rel: 'd', type: 'dir', mode: 0o755, size: 0, mtimeNs: 5n, ctimeNs: 6n, dev: 1n, ino: 2n };
    const touched = { ...dir, mtimeNs: 50n, ctimeNs: 60n };
    expect(encodeEntries([dir]).equals(encodeEntries([touched]))).toBe(true);
    expect(decodeEntries(encodeEntries([dir]))[0]).toMatchObject({ ctimeNs: 0n, ino: 0n });
  });

  it('a snapshot that changed a few files shares all but a few chunks with its parent', () => {
    const parent = Array.from({ length: 10_000 }, (_, i) => entry(`d${Math.floor(i / 100)}/f${i}`, i));
    const child = parent.map((e, i) => (i % 1000 === 7 ? { ...e, contentHash: 'f'.repeat(64) } : e));
    child.splice(5000, 0, entry('d50/inserted', 1));
    const a = new Set(chunkEntries(parent).map((c) => c.hash.toString('hex')));
    const b = chunkEntries(child).map((c) => c.hash.toString('hex'));
    const fresh = b.filter((h) => !a.has(h)).length;
    expect(b.length).toBeGreaterThan(50);
    expect(fresh).toBeLessThanOrEqual(11);
  });
});

describe('chunk reuse (a stored chunk is not encoded again)', () => {
  const parent = Array.from({ length: 3000 }, (_, i) => entry(`d${Math.floor(i / 100)}/f${i}`, i));
  const stored = chunkEntries(parent).map((c) => ({ ...c, entries: decodeEntries(c.data) }));
  const byFirst = new Map(stored.map((c) => [c.entries[0]!.rel, c]));
  const reuse = (part: readonly IndexedEntry[]) => {
    const c = byFirst.get(part[0]!.rel);
    return c && c.entries.length === part.length && part.every((e, i) => sameEncoding(e, c.entries[i]!)) ? c : undefined;
  };

  for (const [what, change] of [
    ['content hash', { contentHash: 'e'.repeat(64) }],
    ['ctime only (the racy-clean field)', { ctimeNs: 1n }],
    ['inode', { ino: 7n }],
    ['permission bits', { mode: 0o600 }],
    ['size', { size: 123456 }],
    ['becoming a link of another path', { linkOf: 'd0/f0' }],
  ] as const) {
    it(`a chunk with one entry's ${what} changed is encoded again, the others are reused byte for byte`, () => {
      const child = parent.map((e, i) => (i === 1234 ? { ...e, ...change } : { ...e }));
      const withReuse = chunkEntries(child, reuse);
      const plain = chunkEntries(child);
      expect(withReuse.map((c) => c.data.toString('hex'))).toEqual(plain.map((c) => c.data.toString('hex')));
      expect(withReuse.map((c) => c.hash.toString('hex'))).toEqual(plain.map((c) => c.hash.toString('hex')));
      const storedHashes = new Set(stored.map((c) => c.hash.toString('hex')));
      expect(withReuse.filter((c) => !storedHashes.has(c.hash.toString('hex')))).toHaveLength(1);
    });
  }

  it('folders differing only in times reuse their chunk (their stats are not stored)', () => {
    const d: IndexedEntry = { rel: 'x', type: 'dir', mode: 0o755, size: 0, mtimeNs: 0n, ctimeNs: 0n, dev: 0n, ino: 0n };
    expect(sameEncoding(d, { ...d, mtimeNs: 99n, ino: 5n })).toBe(true);
    expect(sameEncoding(d, { ...d, mode: 0o700 })).toBe(false);
  });
});

/** Rewrite an open schema-2 index into the schema-1 layout an earlier version wrote (counts in the chunk rows). */
function toSchema1(db: { exec(sql: string): unknown }): void {
  db.exec(`
    CREATE TABLE old(hash BLOB PRIMARY KEY, refs INTEGER NOT NULL, data BLOB NOT NULL);
    INSERT INTO old SELECT c.hash, r.n, c.data FROM chunks c JOIN refs r USING (hash);
    DROP TABLE chunks; DROP TABLE refs; ALTER TABLE old RENAME TO chunks;
    UPDATE meta SET value = '1' WHERE key = 'schema';`);
}

describe('chunk reference counts', () => {
  it('after replacing and deleting lists, the chunk table holds exactly the chunks the remaining lists use, counted once per use', () => {
    const { root } = newRepo();
    const layout = new Layout(root);
    const idx = IndexDb.open(layout)!;
    const base = Array.from({ length: 2000 }, (_, i) => entry(`d${Math.floor(i / 100)}/f${i}`, i));
    const edit = (list: IndexedEntry[], at: number) => list.map((e, i) => (i === at ? { ...e, contentHash: 'c'.repeat(64) } : e));
    idx.putList('snapshot:a', { entries: base, probeNs: 0n });
    idx.putList('worktree:main', { entries: base, probeNs: 1n });
    idx.putList('worktree:main', { entries: edit(base, 10), probeNs: 2n }); // replace: one chunk differs
    idx.putList('snapshot:b', { entries: edit(base, 10), probeNs: 0n });
    idx.putList('worktree:main', { entries: edit(edit(base, 10), 1500), probeNs: 3n });
    idx.deleteList('snapshot:a');
    idx.close();
    const D = createRequire(import.meta.url)('better-sqlite3');
    const db = new D(layout.indexDb, { readonly: true });
    const lists = db.prepare('SELECT chunks FROM lists').pluck().all() as Buffer[];
    const want = new Map<string, number>();
    for (const l of lists) for (let o = 0; o < l.length; o += 32) want.set(l.subarray(o, o + 32).toString('hex'), (want.get(l.subarray(o, o + 32).toString('hex')) ?? 0) + 1);
    const have = new Map((db.prepare('SELECT hash, n FROM refs').all() as Array<{ hash: Buffer; n: number }>).map((r) => [r.hash.toString('hex'), r.n]));
    const stored = (db.prepare('SELECT hash FROM chunks').pluck().all() as Buffer[]).map((h) => h.toString('hex')).sort();
    db.close();
    expect(have).toEqual(want);
    expect(stored).toEqual([...want.keys()].sort());
    expect(lists).toHaveLength(2);
  });

  it("a new list sharing an old one's chunks rewrites no chunk row: a few pages of counts, not one page per chunk", () => {
    const { root } = newRepo();
    const layout = new Layout(root);
    const base = Array.from({ length: 6000 }, (_, i) => entry(`d${Math.floor(i / 100)}/f${i}`, i));
    const chunks = chunkEntries(base).length;
    let idx = IndexDb.open(layout)!;
    idx.putList('snapshot:a', { entries: base, probeNs: 0n });
    idx.close();
    // The journal (PERSIST) keeps the pages the last transaction changed: start it empty.
    const journal = `${layout.indexDb}-journal`;
    fs.rmSync(journal, { force: true });
    idx = IndexDb.open(layout)!;
    idx.putList('snapshot:b', { entries: base.map((e) => ({ ...e })), probeNs: 0n });
    idx.close();
    // Schema 1 journaled one page per chunk here (each chunk row held its count).
    expect(chunks).toBeGreaterThan(60);
    expect(fs.statSync(journal).size).toBeLessThan(12 * 4096);
  });

  it('an index of schema 1 (counts in the chunk rows) is migrated in place: lists, chunks and counts kept', () => {
    const { root } = newRepo();
    const layout = new Layout(root);
    const base = Array.from({ length: 3000 }, (_, i) => entry(`d${Math.floor(i / 100)}/f${i}`, i));
    const edited = base.map((e, i) => (i === 1000 ? { ...e, contentHash: 'c'.repeat(64) } : e));
    let idx = IndexDb.open(layout)!;
    idx.putList('snapshot:a', { entries: base, probeNs: 0n });
    idx.putList('worktree:main', { entries: edited, probeNs: 7n, basis: 'a' });
    idx.close();
    const D = createRequire(import.meta.url)('better-sqlite3');
    let db = new D(layout.indexDb);
    toSchema1(db);
    const before = db.prepare('SELECT hash, refs FROM chunks ORDER BY hash').all();
    db.close();

    idx = IndexDb.open(layout)!;
    expect(idx.getList('snapshot:a')!.entries).toEqual(base);
    expect(idx.getList('worktree:main')).toMatchObject({ entries: edited, probeNs: 7n, basis: 'a' });
    idx.deleteList('snapshot:a');
    idx.close();
    db = new D(layout.indexDb, { readonly: true });
    expect(db.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe('2');
    expect(before.length).toBeGreaterThan(40);
    // After dropping snapshot:a only worktree:main's chunks are left, each used once.
    const left = db.prepare('SELECT c.hash, r.n FROM chunks c JOIN refs r USING (hash)').all() as Array<{ n: number }>;
    expect(left.length).toBe(db.prepare('SELECT count(*) FROM chunks').pluck().get());
    expect(left.length).toBe(db.prepare('SELECT count(*) FROM refs').pluck().get());
    expect(left.every((r) => r.n === 1)).toBe(true);
    db.close();
  });

  it('a process that read schema 1 while another migrated the file re-checks inside its (IMMEDIATE) transaction and leaves it alone', () => {
    const { root } = newRepo();
    const layout = new Layout(root);
    const base = Array.from({ length: 500 }, (_, i) => entry(`d/f${i}`, i));
    let idx = IndexDb.open(layout)!;
    idx.putList('snapshot:a', { entries: base, probeNs: 0n });
    idx.close();
    const D = createRequire(import.meta.url)('better-sqlite3');
    const late = new D(layout.indexDb);
    toSchema1(late);
    // `late` has read schema 1; another process opens the index (and migrates it) first.
    expect(late.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe('1');
    IndexDb.open(layout)!.close();
    expect(() => migrateFrom1(late)).not.toThrow();
    late.close();
    idx = IndexDb.open(layout)!;
    expect(idx.getList('snapshot:a')!.entries).toEqual(base);
    idx.close();
  });
});

describe('index.sqlite is a cache: losing it costs time, never correctness', () => {
  for (const damage of ['deleted', 'garbage', 'corrupt pages'] as const) {
    it(`a repository whose index was ${damage} snapshots, restores, reports status and verifies correctly`, () => {
      const { main, index, snaps } = newRepo();
      writeFiles(main, { 'a.txt': 'one', 'b/c.txt': 'see', 'd.txt': 'dee' });
      const s1 = snap(main, 'one');
      fs.writeFileSync(path.join(main, 'a.txt'), 'two');
      const s2 = snap(main, 'two');
      if (damage === 'deleted') fs.rmSync(index);
      else if (damage === 'garbage') fs.writeFileSync(index, 'this is not a database at all'.repeat(100));
      else {
        // Keep the header (it still opens) and scribble over every page after the first.
        const b = fs.readFileSync(index);
        for (let o = 4096; o < b.length; o++) b[o] = (o * 7919) & 0xff;
        fs.writeFileSync(index, b);
      }
      fs.writeFileSync(path.join(main, 'd.txt'), 'DEE');
      expect(status(main).modified).toEqual(['d.txt']);
      const s3 = snap(main, 'three');
      expect(fs.readFileSync(path.join(snaps, s3.snapshot_id, 'd.txt'), 'utf8')).toBe('DEE');
      restore(main, s1.snapshot_id);
      expect(readTree(main)).toEqual({ 'a.txt': 'one', 'b/': '', 'b/c.txt': 'see', 'd.txt': 'dee' });
      restore(main, s2.snapshot_id);
      expect(fs.readFileSync(path.join(main, 'a.txt'), 'utf8')).toBe('two');
      expect(fs.readFileSync(path.join(main, 'd.txt'), 'utf8')).toBe('dee');
      expect(verifyAll(main).severity).toBe('ok');
      // And the cache is back: the next snapshot after a restore of HEAD links again.
      restore(main, 'HEAD');
      fs.writeFileSync(path.join(main, 'b/c.txt'), 'SEA');
      const s4 = snap(main, 'four');
      expect(s4.incremental.index).toBe(true);
      expect(s4.incremental.linked).toBeGreaterThanOrEqual(1);
    });
  }

  it('rebuildIndex recreates every snapshot manifest with the hashes the snapshots were taken with', async () => {
    const { root, main } = newRepo();
    writeFiles(main, { 'x': 'x1', 'y/z': 'z1' });
    const s1 = snap(main, 'one');
    writeFiles(main, { 'x': 'x2' });
    const s2 = snap(main, 'two');
    const layout = new Layout(root);
    const before = new Map<string, IndexedEntry[] | undefined>();
    let idx = IndexDb.open(layout)!;
    for (const id of [s1.snapshot_id, s2.snapshot_id]) before.set(id, getSnapshotManifest(idx, id));
    idx.close();
    fs.writeFileSync(layout.indexDb, 'junk');
    const r = rebuildIndex(layout);
    expect(r).toMatchObject({ rebuilt: true, snapshots: 2, manifests: 2, skipped: [] });
    idx = IndexDb.open(layout)!;
    for (const [id, old] of before) {
      const now = getSnapshotManifest(idx, id)!;
      const view = (l: IndexedEntry[]) => l.map((e) => [e.rel, e.type, e.mode, e.size, e.contentHash ?? null, e.mtimeNs]);
      expect(view(now)).toEqual(view(old!));
    }
    idx.close();
  });
});

describe('index housekeeping', () => {
  it('manifests of snapshots removed (as gc does) and states of removed worktrees leave the index at the next snapshot', () => {
    const { root, main } = newRepo();
    writeFiles(main, { a: '1' });
    const s1 = snap(main, 'one');
    writeFiles(main, { a: '2' });
    snap(main, 'two');
    const layout = new Layout(root);
    fs.rmSync(layout.descriptor(s1.snapshot_id));
    fs.rmSync(layout.snapshotDir(s1.snapshot_id), { recursive: true });
    let idx = IndexDb.open(layout)!;
    expect(idx.listOwners()).toContain(`snapshot:${s1.snapshot_id}`);
    idx.putList('worktree:ghost', { entries: [], probeNs: 0n });
    idx.close();
    writeFiles(main, { a: '3' });
    snap(main, 'three');
    idx = IndexDb.open(layout)!;
    const owners = idx.listOwners();
    idx.close();
    expect(owners).not.toContain(`snapshot:${s1.snapshot_id}`);
    expect(owners).not.toContain('worktree:ghost');
    expect(owners).toContain('worktree:main');
    expect(owners.filter((o) => o.startsWith('snapshot:'))).toHaveLength(2);
  });
});

describe('a file edited while a snapshot is being taken', () => {
  it('the snapshot stays self-consistent and the next snapshot captures the edit', async () => {
    const { root, main, snaps } = newRepo();
    const names = Array.from({ length: 12 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    writeFiles(main, Object.fromEntries(names.map((n) => [n, `${n} original`])));
    snap(main, 'base');
    // Changed files are copied; the progress callback fires after each copy. The first
    // call edits a later, unchanged file (same size, same mtime) and an earlier one.
    fs.writeFileSync(path.join(main, 'f00'), 'f00 changed!');
    const victim = path.join(main, 'f09');
    const mtime = fs.statSync(victim).mtime;
    let edited = false;
    process.env.JVS_SNAPSHOT_ENGINE = 'copy';
    try {
      const s = await createSnapshot(new Layout(root), {
        worktree: 'main',
        note: 'during',
        noHook: true,
        reporter: {
          progress() {
            if (edited) return;
            edited = true;
            fs.writeFileSync(victim, 'f09 EDITED!');
            fs.utimesSync(victim, mtime, mtime);
            fs.writeFileSync(path.join(main, 'f00'), 'f00 AGAIN!!!');
          },
        },
      });
      expect(edited).toBe(true);
      expect(verifyAll(main).severity).toBe('ok');
      expect(['f09 original', 'f09 EDITED!']).toContain(fs.readFileSync(path.join(snaps, s.snapshot_id, 'f09'), 'utf8'));
    } finally {
      delete process.env.JVS_SNAPSHOT_ENGINE;
    }
    expect(status(main).clean).toBe(false);
    const next = snap(main, 'after');
    expect(fs.readFileSync(path.join(snaps, next.snapshot_id, 'f09'), 'utf8')).toBe('f09 EDITED!');
    expect(fs.readFileSync(path.join(snaps, next.snapshot_id, 'f00'), 'utf8')).toBe('f00 AGAIN!!!');
    expect(verifyAll(main).severity).toBe('ok');
  });
});

describe('a manifest checked once per process (restore in an agent loop)', () => {
  it('is checked again when the index changes under it: a tampered list is refused and rebuilt from the payload', async () => {
    const { checkedSnapshotManifest } = await import('../../src/index/manifests.js');
    const { readDescriptor } = await import('../../src/repo/snapshots.js');
    const { snapshotOwner } = await import('../../src/index/indexDb.js');
    const r = newRepo();
    writeFiles(r.main, { 'a.txt': 'A\n', 'd/b.txt': 'B\n' });
    const id = snap(r.main, 'one').snapshot_id as string;
    const layout = new Layout(r.root);
    const d = readDescriptor(layout, id);
    const first = IndexDb.open(layout)!;
    const good = checkedSnapshotManifest(first, layout, d).map((e) => ({ ...e }));
    // Checked: the same process reads the same decoded chunks again and takes them as they are.
    expect(checkedSnapshotManifest(first, layout, d)).toEqual(good);
    // Someone with write access to the index points a.txt elsewhere (new chunks, new objects).
    const tampered = good.map((e) => (e.rel === 'a.txt' ? { ...e, rel: '../../outside.txt' } : e));
    first.putList(snapshotOwner(id), { entries: tampered, probeNs: 0n });
    first.close();
    const again = IndexDb.open(layout)!;
    try {
      const got = checkedSnapshotManifest(again, layout, d);
      expect(got.map((e) => e.rel)).toEqual(good.map((e) => e.rel));
      expect(got.some((e) => e.rel.includes('..'))).toBe(false);
    } finally {
      again.close();
    }
  });
});

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { payloadRootHash, type HashedEntry } from '../../src/format/payloadHash.js';
import { packEntries, rootHashOf, rootHashOfRecords } from '../../src/fsutil/rootHash.js';
import { chunkEntries, decodeEntries, encodeEntries, type IndexedEntry } from '../../src/index/manifestCodec.js';
import { nameFromBytes } from '../../src/format/nameBytes.js';
import { native } from '../../src/native/native.js';
import { itWith } from '../helpers/prereq.js';

// src/format/payloadHash.ts is the definition; the addon's rootHash must give the same
// hash for every list, so these tests compare against it directly.
const missing = typeof native()?.rootHash === 'function' ? undefined : 'the jvs_native addon with rootHash is not built (npm run build:native)';
/** The addon's answer for a list, packed as rootHashOf packs it. */
const nativeRoot = (entries: HashedEntry[]): string | null => {
  const p = packEntries(entries)!;
  return native()!.rootHash(p.fields, p.types, p.modes, p.sizes);
};

const hex = (s: string) => createHash('sha256').update(s).digest('hex');

/** A deterministic pseudo-random generator, so a failure reproduces. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/**
 * About `files` files in nested folders, listed as a walk lists them: depth first,
 * names in UTF-16 order. Names include '-', '.', ' ' and digits, which sort before '/'
 * and ':' and so put some lines out of walk order.
 */
function walkList(files: number, names: readonly string[] = ['a', 'b-c', 'b.c', 'b c', 'B', '10', '9', 'x_y']): HashedEntry[] {
  const rand = rng(files);
  const out: HashedEntry[] = [];
  let left = files;
  const folder = (rel: string, depth: number): void => {
    const here = names.flatMap((n) => [0, 1, 2].map((k) => `${n}${depth}${k}`)).sort();
    for (const name of here) {
      if (left <= 0) return;
      const r = rel ? `${rel}/${name}` : name;
      const kind = rand();
      if (kind < 0.08 && depth < 5) {
        out.push({ rel: r, type: 'dir', mode: 0o755, size: 4096 });
        folder(r, depth + 1);
      } else if (kind < 0.11) {
        out.push({ rel: r, type: 'symlink', mode: 0o777, size: 3, target: `../${name}` });
      } else {
        left--;
        const size = Math.floor(rand() * 100000);
        out.push({ rel: r, type: 'file', mode: rand() < 0.2 ? 0o755 : 0o644, size, contentHash: hex(r) });
      }
    }
  };
  // Top folders with zero-padded names, so their walk order is their numeric order.
  for (let k = 0; left > 0; k++) {
    const top = `top${String(k).padStart(5, '0')}`;
    out.push({ rel: top, type: 'dir', mode: 0o750, size: 4096 });
    folder(top, 1);
  }
  return out;
}

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const rand = rng(seed);
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

describe('native payload root hash (rootHash)', () => {
  itWith('native', missing, 'equals payloadRootHash for a 10,000-file list in walk order', () => {
    const list = walkList(10_000);
    expect(list.filter((e) => e.type === 'file').length).toBe(10_000);
    expect(nativeRoot(list)).toBe(payloadRootHash(list));
  });

  itWith('native', missing, 'equals payloadRootHash for the same list shuffled (every type needs sorting)', () => {
    const list = walkList(10_000);
    const mixed = shuffled(list, 7);
    expect(nativeRoot(mixed)).toBe(payloadRootHash(list));
  });

  itWith('native', missing, 'sorts by UTF-8 bytes: astral (emoji) and high-BMP (U+FF21, U+E000, U+FFFD) names', () => {
    // In UTF-16 the emoji's surrogates (0xD83D…) sort before U+E000 and U+FF21; in UTF-8 after.
    const names = ['\u{1F600}', 'e\u{1F600}', '\uFF21', '\uE000', '\uFFFD', 'é', 'z', '日本'];
    const list = walkList(300, names);
    expect(list.some((e) => e.rel.includes('\u{1F600}'))).toBe(true);
    const js = payloadRootHash(list);
    expect(nativeRoot(list)).toBe(js);
    expect(nativeRoot(shuffled(list, 3))).toBe(js);
    // And a list without surrogates, where the high-BMP names alone decide the order.
    const bmp = walkList(300, ['\uFF21', '\uE000', 'é', 'z']);
    expect(nativeRoot(shuffled(bmp, 5))).toBe(payloadRootHash(bmp));
  });

  itWith('native', missing, 'orders names holding ":" and control characters as the whole lines order', () => {
    // "a" against "a:mode=0755": the names alone do not decide, the lines after them do.
    const rels = ['a', 'a:b', 'a:mode=0755', 'a:mode=0755:x', 'a:', 'a\u0001', 'a\t', 'a/b', 'a-b', 'a.b', 'a\u007f', 'a:mode=0644'];
    const list: HashedEntry[] = rels.flatMap((r) => [
      { rel: `d/${r}`, type: 'dir' as const, mode: 0o755, size: 0 },
      { rel: `f/${r}`, type: 'file' as const, mode: 0o644, size: 1, contentHash: hex(r) },
      { rel: `l/${r}`, type: 'symlink' as const, mode: 0o777, size: 1, target: r },
    ]);
    const js = payloadRootHash(list);
    expect(nativeRoot(list)).toBe(js);
    expect(nativeRoot(shuffled(list, 11))).toBe(js);
    expect(nativeRoot([...list].reverse())).toBe(js);
  });

  itWith('native', missing, 'prints zero and large sizes and every permission bit pattern as the format does', () => {
    const list: HashedEntry[] = [
      { rel: 'empty', type: 'file', mode: 0o100644, size: 0, contentHash: hex('') },
      { rel: 'big', type: 'file', mode: 0o4755, size: 2 ** 40 + 3, contentHash: hex('big') },
      { rel: 'max', type: 'file', mode: 0o000, size: 2 ** 53, contentHash: hex('max') },
      { rel: 'tmp', type: 'dir', mode: 0o1777, size: 0 },
      { rel: 'tmp/x', type: 'dir', mode: 0o040700, size: 0 },
      { rel: 'l', type: 'symlink', mode: 0o120777, size: 1, target: 'x' },
    ];
    expect(nativeRoot(list)).toBe(payloadRootHash(list));
    // A change of one bit the format keeps changes the hash; a bit it drops (0o4000) does not.
    const moved = list.map((e) => (e.rel === 'empty' ? { ...e, mode: 0o100645 } : e));
    expect(nativeRoot(moved)).not.toBe(nativeRoot(list));
    const setuid = list.map((e) => (e.rel === 'big' ? { ...e, mode: 0o755 } : e));
    expect(nativeRoot(setuid)).toBe(nativeRoot(list));
  });

  itWith('native', missing, 'hashes symlink targets and folder base names as UTF-8', () => {
    const list: HashedEntry[] = [
      { rel: 'dé', type: 'dir', mode: 0o755, size: 0 },
      { rel: 'dé/日本', type: 'dir', mode: 0o755, size: 0 },
      { rel: 'dé/l1', type: 'symlink', mode: 0o777, size: 0, target: '../naïve/\u{1F600}/\uFF21' },
      { rel: 'dé/l2', type: 'symlink', mode: 0o777, size: 0, target: '' },
      { rel: 'dé/l3', type: 'symlink', mode: 0o777, size: 0 },
    ];
    expect(nativeRoot(list)).toBe(payloadRootHash(list));
  });

  itWith('native', missing, 'gives the hash of nothing for an empty list', () => {
    expect(nativeRoot([])).toBe(payloadRootHash([]));
    expect(nativeRoot([])).toBe(hex(''));
  });

  itWith('native', missing, 'throws, as payloadRootHash does, for a file without a content hash', () => {
    const list: HashedEntry[] = [
      { rel: 'a', type: 'file', mode: 0o644, size: 1, contentHash: hex('a') },
      { rel: 'd/b', type: 'file', mode: 0o644, size: 1 },
    ];
    expect(() => payloadRootHash(list)).toThrow('payload hash: file d/b has no content hash');
    expect(() => nativeRoot(list)).toThrow('payload hash: file d/b has no content hash');
    expect(() => nativeRoot([{ ...list[1]!, contentHash: '' }])).toThrow('payload hash: file d/b has no content hash');
  });

  itWith('native', missing, 'declines (null) what it would print differently: sizes that are not safe integers, a NUL inside a name', () => {
    const file = (size: number, rel = 'f'): HashedEntry => ({ rel, type: 'file', mode: 0o644, size, contentHash: hex(rel) });
    expect(nativeRoot([file(1.5)])).toBeNull();
    expect(nativeRoot([file(2 ** 60)])).toBeNull();
    expect(nativeRoot([file(Number.NaN)])).toBeNull();
    expect(nativeRoot([file(1, 'a\0b')])).toBeNull();
  });
});

/** Entries as the index stores them (stats made up: the root hash does not cover them). */
const indexed = (list: readonly HashedEntry[]): IndexedEntry[] => list.map((e, i) => ({ ...e, mtimeNs: BigInt(i) * 1000n, ctimeNs: 7n, dev: 1n, ino: BigInt(i + 1) }));
const missingRecords = typeof native()?.rootHashRecords === 'function' ? undefined : 'the jvs_native addon with rootHashRecords is not built (npm run build:native)';
/** The addon's answer for the index's encoding of a list, cut into chunks as the index cuts it. */
const recordsRoot = (list: readonly HashedEntry[]): string | null => native()!.rootHashRecords!(Buffer.concat(chunkEntries(indexed(list)).map((c) => c.data)));

// A restore checks a stored manifest against its descriptor, and a snapshot takes its
// root hash, from the index's chunk bytes (rootHashRecords): the answer must be the
// one payloadRootHash gives for the entries those bytes decode to, or null (then the
// caller decodes and asks rootHashOf).
describe('native payload root hash of stored records (rootHashRecords)', () => {
  itWith('native', missingRecords, 'equals payloadRootHash of the decoded entries for a 10,000-file list, in walk order and shuffled', () => {
    const list = walkList(10_000);
    const js = payloadRootHash(list);
    expect(recordsRoot(list)).toBe(js);
    expect(recordsRoot(shuffled(list, 7))).toBe(js);
    const data = Buffer.concat(chunkEntries(indexed(list)).map((c) => c.data));
    expect(payloadRootHash(decodeEntries(data))).toBe(js);
    // One changed content hash, mode bit or size is a different hash.
    const changed = list.map((e, i) => (i === 5000 && e.type === 'file' ? { ...e, size: e.size + 1 } : e));
    expect(recordsRoot(changed)).toBe(payloadRootHash(changed));
    expect(recordsRoot(changed)).not.toBe(js);
  });

  itWith('native', missingRecords, 'equals payloadRootHash for names sorted by UTF-8 bytes, names holding ":", odd modes and sizes, symlink targets', () => {
    const names = walkList(300, ['\u{1F600}', 'e\u{1F600}', '\uFF21', '\uE000', '\uFFFD', 'é', 'z', '日本']);
    expect(recordsRoot(shuffled(names, 3))).toBe(payloadRootHash(names));
    const rels = ['a', 'a:b', 'a:mode=0755', 'a:mode=0755:x', 'a:', 'a\u0001', 'a\t', 'a/b', 'a-b', 'a.b', 'a\u007f', 'a:mode=0644'];
    const colons: HashedEntry[] = rels.flatMap((r) => [
      { rel: `d/${r}`, type: 'dir' as const, mode: 0o755, size: 0 },
      { rel: `f/${r}`, type: 'file' as const, mode: 0o644, size: 1, contentHash: hex(r) },
      { rel: `l/${r}`, type: 'symlink' as const, mode: 0o777, size: 1, target: r },
    ]);
    expect(recordsRoot([...colons].reverse())).toBe(payloadRootHash(colons));
    const odd: HashedEntry[] = [
      { rel: 'empty', type: 'file', mode: 0o100644, size: 0, contentHash: hex('') },
      { rel: 'big', type: 'file', mode: 0o4755, size: 2 ** 40 + 3, contentHash: hex('big') },
      { rel: 'max', type: 'file', mode: 0o000, size: 2 ** 53, contentHash: hex('max') },
      { rel: 'tmp', type: 'dir', mode: 0o1777, size: 0 },
      { rel: 'l', type: 'symlink', mode: 0o120777, size: 1, target: '../naïve/\u{1F600}' },
      { rel: 'l2', type: 'symlink', mode: 0o777, size: 0, target: '' },
    ];
    expect(recordsRoot(odd)).toBe(payloadRootHash(odd));
    expect(recordsRoot([])).toBe(hex(''));
  });

  itWith('native', missingRecords, 'hashes names that are not UTF-8 by their bytes, as the decoded entries hash', () => {
    const bytes = [Buffer.from([0x61, 0xff]), Buffer.from([0xe9, 0x2e, 0x74]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('ok')];
    const list: HashedEntry[] = bytes.flatMap((n, i) => [
      { rel: nameFromBytes(Buffer.concat([Buffer.from('f/'), n])), type: 'file' as const, mode: 0o644, size: i, contentHash: hex(String(i)) },
      { rel: nameFromBytes(Buffer.concat([Buffer.from('d/'), n])), type: 'dir' as const, mode: 0o755, size: 0 },
      { rel: nameFromBytes(Buffer.concat([Buffer.from('l/'), n])), type: 'symlink' as const, mode: 0o777, size: 0, target: nameFromBytes(n) },
    ]);
    const data = encodeEntries(indexed(list));
    expect(native()!.rootHashRecords!(data)).toBe(payloadRootHash(decodeEntries(data)));
    expect(native()!.rootHashRecords!(data)).toBe(payloadRootHash(list));
  });

  itWith('native', missingRecords, 'declines (null) a file without a hash, a symlink without a target, a NUL in a name, an unsafe size, and malformed records', () => {
    const file = (rel: string, size = 1, contentHash: string | null = hex(rel)): HashedEntry => ({ rel, type: 'file', mode: 0o644, size, ...(contentHash !== null ? { contentHash } : {}) });
    const one = (e: HashedEntry) => native()!.rootHashRecords!(encodeEntries(indexed([file('a'), e])));
    expect(one(file('x', 1, null))).toBeNull();
    expect(one({ rel: 'l', type: 'symlink', mode: 0o777, size: 0 })).toBeNull();
    expect(one(file('a\0b'))).toBeNull();
    expect(one({ rel: 'l', type: 'symlink', mode: 0o777, size: 0, target: 'a\0b' })).toBeNull();
    expect(one(file('x', 1.5))).toBeNull();
    expect(one(file('x', 2 ** 60))).toBeNull();
    const good = encodeEntries(indexed([file('a'), file('b')]));
    expect(native()!.rootHashRecords!(good.subarray(0, good.length - 1))).toBeNull();
    const badType = Buffer.from(good);
    badType[0] = 3;
    expect(native()!.rootHashRecords!(badType)).toBeNull();
    expect(() => native()!.rootHashRecords!('x' as unknown as Buffer)).toThrow(TypeError);
  });

  it('rootHashOfRecords gives rootHashOf\'s answer, or undefined for the caller to ask rootHashOf', () => {
    const list = walkList(2_000, ['\u{1F600}', 'a', '\uE000', 'b-c']);
    const chunks = chunkEntries(indexed(list)).map((c) => c.data);
    const h = rootHashOfRecords(chunks);
    if (missingRecords) expect(h).toBeUndefined();
    else expect(h).toBe(rootHashOf(list));
    expect(rootHashOfRecords([encodeEntries(indexed([{ rel: 'x', type: 'file', mode: 0o644, size: 0 }]))])).toBeUndefined();
  });
});

describe('rootHashOf (native when built, else payloadRootHash)', () => {
  it('equals payloadRootHash, also for what the addon declines and for any iterable', () => {
    const list = walkList(2_000, ['\u{1F600}', 'a', '\uE000', 'b-c']);
    expect(rootHashOf(list)).toBe(payloadRootHash(list));
    expect(rootHashOf(new Set(list))).toBe(payloadRootHash(list));
    const odd: HashedEntry[] = [...list, { rel: 'huge', type: 'file', mode: 0o644, size: 2 ** 60, contentHash: hex('huge') }, { rel: 'half', type: 'file', mode: 0o644, size: 0.5, contentHash: hex('half') }];
    expect(rootHashOf(odd)).toBe(payloadRootHash(odd));
    expect(rootHashOf([])).toBe(hex(''));
  });

  it('throws for a file without a content hash', () => {
    expect(() => rootHashOf([{ rel: 'x', type: 'file', mode: 0o644, size: 0 }])).toThrow('payload hash: file x has no content hash');
  });
});

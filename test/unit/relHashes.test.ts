import { describe, expect } from 'vitest';
import { fnv1a, relHashes } from '../../src/index/manifestCodec.js';
import { native } from '../../src/native/native.js';
import { itWith } from '../helpers/prereq.js';

// Chunk cuts (src/index/manifestCodec.ts) depend on each path's fnv1a. The addon
// computes them for a whole list (native/jvs_chunks.c); a different value would move
// cuts and change every stored chunk, so it must equal the JavaScript definition.
const missing = typeof native()?.relHashes === 'function' ? undefined : 'the jvs_native addon with relHashes is not built (npm run build:native)';

describe('path hashes for chunk cuts (relHashes)', () => {
  itWith('native', missing, "equals fnv1a of each path's UTF-16 code units, astral and lone surrogates included", () => {
    const rels: string[] = ['', 'a', 'd000/f12.bin', 'é/日本/\u{1F600}', '\ud800x', 'x\udc80', '\uffff', 'a b:c'];
    for (let i = 0; i < 10_000; i++) rels.push(`d${i % 97}/f${i}.${i % 3 ? 'bin' : 'txt'}`);
    const got = relHashes(rels.map((rel) => ({ rel })))!;
    expect(got).toBeInstanceOf(Uint32Array);
    expect(got.length).toBe(rels.length);
    const want = rels.map(fnv1a);
    expect(Array.from(got)).toEqual(want);
    // The cut rule looks at the low bits: some paths of this list cut, most do not.
    expect(want.filter((h) => (h & 63) === 0).length).toBeGreaterThan(50);
  });

  itWith('native', missing, 'declines (undefined) a list whose paths do not split back: a NUL inside a path', () => {
    expect(relHashes([{ rel: 'a\0b' }, { rel: 'c' }])).toBeUndefined();
    expect(native()!.relHashes!('a\0b', 3)).toBeNull();
    expect(relHashes([])).toBeUndefined();
  });
});

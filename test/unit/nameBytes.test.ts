import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fsPath, nameBytes, nameForHumans, nameFromBytes, textForHumans } from '../../src/format/nameBytes.js';
import { payloadRootHash, type HashedEntry } from '../../src/format/payloadHash.js';
import { decodeEntries, encodeEntries, type IndexedEntry } from '../../src/index/manifestCodec.js';
import { packEntries, rootHashOf } from '../../src/fsutil/rootHash.js';
import { walkTree } from '../../src/fsutil/walk.js';
import { native } from '../../src/native/native.js';
import { itWith } from '../helpers/prereq.js';
import { tmpDir } from '../helpers/tmp.js';

const noAddon = native() ? undefined : 'the jvs_native addon is not built (npm run build:native)';
const b = (s: string) => Buffer.from(s, 'latin1');

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

/** Random names the kernel allows (no "/" or NUL, not "." or ".."), biased towards bytes >= 0x80 and UTF-8 fragments. */
function randomNames(count: number, seed: number): Buffer[] {
  const rand = rng(seed);
  const pieces = ['a', 'Z', '.', '-', '\n', '\x01', '\x7f', 'é', '€', '😀', '\u{10ffff}', '\ufffd', '\u0085'].map((s) => Buffer.from(s, 'utf8'));
  const out = new Map<string, Buffer>();
  while (out.size < count) {
    const parts: Buffer[] = [];
    const n = 1 + Math.floor(rand() * 6);
    for (let i = 0; i < n; i++) {
      if (rand() < 0.5) parts.push(Buffer.from([0x80 + Math.floor(rand() * 128)]));
      else {
        const p = pieces[Math.floor(rand() * pieces.length)]!;
        // Sometimes only the start of a multi-byte sequence: a truncated, invalid one.
        parts.push(p.length > 1 && rand() < 0.3 ? p.subarray(0, 1 + Math.floor(rand() * (p.length - 1))) : p);
      }
    }
    const name = Buffer.concat(parts);
    if (name.equals(b('.')) || name.equals(b('..'))) continue;
    out.set(name.toString('hex'), name);
  }
  return [...out.values()];
}

/** The reference rule (DESIGN.md §3) computed here over bytes only: lines as byte strings, sorted by bytes. */
function referenceRootHash(entries: Array<{ rel: Buffer; type: 'dir' | 'file' | 'symlink'; mode: number; size: number; content?: string; target?: Buffer }>): string {
  const sha = (x: Buffer | string) => createHash('sha256').update(x).digest('hex');
  const lines = entries.map((e) => {
    const mode = e.mode.toString(8).padStart(4, '0');
    const base = e.rel.subarray(e.rel.lastIndexOf(0x2f) + 1);
    const tail = e.type === 'dir' ? `:mode=${mode}:${sha(base)}\n` : e.type === 'symlink' ? `:mode=${mode}:${sha(e.target!)}\n` : `:mode=${mode},size=${e.size}:${e.content}\n`;
    return Buffer.concat([Buffer.from(`${e.type}:`), e.rel, Buffer.from(tail)]);
  });
  lines.sort(Buffer.compare);
  return sha(Buffer.concat(lines));
}

describe('names that are not UTF-8 (format/nameBytes.ts: surrogateescape)', () => {
  it('every byte string round-trips: nameBytes(nameFromBytes(b)) is b, and valid UTF-8 decodes as usual', () => {
    for (const name of randomNames(2000, 7)) expect(nameBytes(nameFromBytes(name)).equals(name)).toBe(true);
    expect(nameFromBytes(b('caf\xe9.txt'))).toBe('caf\udce9.txt');
    expect(nameFromBytes(Buffer.from('café 😀'))).toBe('café 😀');
    // Truncated and overlong sequences, encoded surrogates: each byte escaped on its own.
    expect(nameFromBytes(b('\xe2\x82'))).toBe('\udce2\udc82');
    expect(nameFromBytes(b('\xc0\xaf'))).toBe('\udcc0\udcaf');
    expect(nameFromBytes(b('\xed\xa0\x80'))).toBe('\udced\udca0\udc80');
    expect(nameFromBytes(b('\xf0\x9f\x98\x80\xe9'))).toBe('😀\udce9');
  });

  it('the mapping is one-to-one: different byte strings never give the same name', () => {
    const seen = new Map<string, string>();
    for (const name of randomNames(3000, 11)) {
      const s = nameFromBytes(name);
      expect(seen.get(s) ?? name.toString('hex')).toBe(name.toString('hex'));
      seen.set(s, name.toString('hex'));
    }
  });

  it('fsPath hands fs a plain name as the string itself and an escaped one as its exact bytes', () => {
    expect(fsPath('/tmp/a/café')).toBe('/tmp/a/café');
    expect(fsPath('/tmp/caf\udce9')).toEqual(b('/tmp/caf\xe9'));
  });

  it('the manifest codec stores the bytes of a name (and of a link target) and reads the same name back', () => {
    const rel = nameFromBytes(b('d\xff/caf\xe9.txt'));
    const entries: IndexedEntry[] = [
      { rel, type: 'file', mode: 0o644, size: 3, mtimeNs: 1n, ctimeNs: 2n, dev: 3n, ino: 4n, contentHash: 'ab'.repeat(32), linkOf: nameFromBytes(b('first\xe9')) },
      { rel: nameFromBytes(b('l\x80nk')), type: 'symlink', mode: 0o777, size: 0, mtimeNs: 0n, ctimeNs: 0n, dev: 0n, ino: 0n, target: nameFromBytes(b('../t\xfe')) },
      { rel: 'plain', type: 'dir', mode: 0o755, size: 0, mtimeNs: 0n, ctimeNs: 0n, dev: 0n, ino: 0n },
    ];
    const data = encodeEntries(entries);
    expect(data.includes(b('d\xff/caf\xe9.txt'))).toBe(true);
    expect(data.includes(b('../t\xfe'))).toBe(true);
    expect(data.includes(Buffer.from('\ufffd'))).toBe(false);
    const back = decodeEntries(data);
    expect(back.map((e) => [e.rel, e.target, e.linkOf])).toEqual(entries.map((e) => [e.rel, e.target, e.linkOf]));
  });

  it('the payload root hash of names that are not UTF-8 follows the reference rule over bytes (JavaScript and addon)', () => {
    const names = randomNames(300, 3);
    const raw: Parameters<typeof referenceRootHash>[0] = [];
    const listed: HashedEntry[] = [];
    names.forEach((n, i) => {
      const type = (['dir', 'file', 'symlink'] as const)[i % 3]!;
      const rel = i % 5 === 0 ? Buffer.concat([b('top\xe9/'), n]) : n;
      const content = createHash('sha256').update(n).digest('hex');
      const target = Buffer.concat([b('../'), n]);
      raw.push({ rel, type, mode: type === 'symlink' ? 0o777 : 0o644, size: type === 'file' ? i : 0, content, target });
      listed.push({ rel: nameFromBytes(rel), type, mode: type === 'symlink' ? 0o777 : 0o644, size: type === 'file' ? i : 0, contentHash: type === 'file' ? content : undefined, target: type === 'symlink' ? nameFromBytes(target) : undefined });
    });
    raw.push({ rel: b('top\xe9'), type: 'dir', mode: 0o755, size: 0 });
    listed.push({ rel: nameFromBytes(b('top\xe9')), type: 'dir', mode: 0o755, size: 0 });
    const expected = referenceRootHash(raw);
    expect(payloadRootHash(listed)).toBe(expected);
    expect(rootHashOf(listed)).toBe(expected);
    // U+FFFD in the hashed text would be a different hash: the byte rule is what is checked.
    expect(payloadRootHash(listed.map((e) => ({ ...e, rel: Buffer.from(nameBytes(e.rel).toString('utf8')).toString('utf8') })))).not.toBe(expected);
  });

  itWith('native', noAddon, 'the addon computes the same root hash as JavaScript for names that are not UTF-8', () => {
    const list: HashedEntry[] = randomNames(200, 5).map((n, i) => ({ rel: nameFromBytes(n), type: 'file' as const, mode: 0o644, size: i, contentHash: 'cd'.repeat(32) }));
    const p = packEntries(list)!;
    expect(native()!.rootHash(p.fields, p.types, p.modes, p.sizes)).toBe(payloadRootHash(list));
  });

  itWith('native', noAddon, 'a walk (addon scan and JavaScript fallback) lists names that are not UTF-8 with their bytes, in JavaScript sort order', () => {
    const root = tmpDir();
    const names = randomNames(120, 9);
    const rootBytes = Buffer.from(root + '/');
    for (const [i, n] of names.entries()) {
      const p = Buffer.concat([rootBytes, n]);
      if (i % 4 === 0) {
        fs.mkdirSync(p);
        fs.writeFileSync(Buffer.concat([p, b('/in\xe9')]), 'x');
      } else fs.writeFileSync(p, String(i));
    }
    const expectedTop = names.map((n) => nameFromBytes(n)).sort();
    const viaAddon = walkTree(root).entries; // whole-tree native scan
    const viaLevels = walkTree(root, { include: () => true }).entries; // native scanDirs, level by level
    expect(viaAddon.map((e) => e.rel)).toEqual(viaLevels.map((e) => e.rel));
    expect(viaAddon.filter((e) => !e.rel.includes('/')).map((e) => e.rel)).toEqual(expectedTop);
    for (const e of viaAddon) expect(fs.existsSync(fsPath(path.join(root, e.rel)))).toBe(true);
    expect(viaAddon.filter((e) => e.rel.endsWith('/in\udce9')).length).toBe(names.filter((_, i) => i % 4 === 0).length);
  });

  it('printing quotes and escapes a name that is not UTF-8 or holds control characters; ordinary names print as they are', () => {
    expect(nameForHumans('caf\udce9.txt')).toBe('"caf\\xe9.txt"');
    expect(nameForHumans('a\nb\tc\x1b[31m')).toBe('"a\\nb\\tc\\x1b[31m"');
    expect(nameForHumans('back\\slash "q"\x01')).toBe('"back\\\\slash \\"q\\"\\x01"');
    expect(nameForHumans('c1\u0085')).toBe('"c1\\u0085"');
    expect(nameForHumans('café 😀 a\\b.txt')).toBe('café 😀 a\\b.txt');
    expect(nameForHumans('"quoted"')).toBe('"\\"quoted\\""');
    expect(textForHumans('cannot read caf\udce9\x1b[2J')).toBe('cannot read caf\\xe9\\x1b[2J');
    expect(textForHumans('plain "text" \\ here')).toBe('plain "text" \\ here');
  });
});

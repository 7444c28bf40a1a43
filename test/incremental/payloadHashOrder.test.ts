import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { payloadLine, payloadRootHash, type HashedEntry } from '../../src/format/payloadHash.js';

/** The format's definition, written the slow way: lines sorted as UTF-8 byte strings. */
function byBytes(entries: HashedEntry[]): string {
  const lines = entries.map((e) => Buffer.from(payloadLine(e) + '\n')).sort(Buffer.compare);
  const h = createHash('sha256');
  for (const l of lines) h.update(l);
  return h.digest('hex');
}

describe('payload root hash ordering (fast string sort)', () => {
  const file = (rel: string): HashedEntry => ({ rel, type: 'file', mode: 0o644, size: 1, contentHash: 'a'.repeat(64) });

  it('orders like UTF-8 bytes for ASCII and BMP names', () => {
    const list = ['b', 'a', 'A', 'a/b', 'a-b', 'é', 'z', '\uffee', '\u00ff'].map(file);
    expect(payloadRootHash(list)).toBe(byBytes(list));
  });

  it('a list in walk order (folders, then their files, names with "-" sorting before "/") hashes as the format defines, and so does one already sorted', () => {
    const dir = (rel: string): HashedEntry => ({ rel, type: 'dir', mode: 0o755, size: 0 });
    const link = (rel: string): HashedEntry => ({ rel, type: 'symlink', mode: 0o777, size: 0, target: 't' });
    // Depth-first walk order: "a" and its subtree come before "a-b" ('-' < '/' in bytes).
    const walkOrder = [dir('a'), file('a/x'), link('a/y'), file('a-b'), dir('b'), file('b/c')];
    expect(payloadRootHash(walkOrder)).toBe(byBytes(walkOrder));
    const sorted = [dir('a'), dir('b'), file('a-b'), file('a/x'), file('b/c'), link('a/y')];
    expect(payloadRootHash(sorted)).toBe(byBytes(sorted));
    expect(payloadRootHash(sorted)).toBe(payloadRootHash(walkOrder));
  });

  it('orders like UTF-8 bytes when names hold astral characters (where UTF-16 order differs)', () => {
    // U+1F600 is a surrogate pair in UTF-16 (0xD83D…) and sorts before U+FFEE there, after it in UTF-8.
    const list = ['\u{1F600}.txt', '\uffee.txt', 'plain'].map(file);
    expect(payloadRootHash(list)).toBe(byBytes(list));
  });
});

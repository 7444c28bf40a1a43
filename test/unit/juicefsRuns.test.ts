import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseObjectRuns } from '../../src/engines/juicefsRuns.js';
import { native } from '../../src/native/native.js';
import { itWith } from '../helpers/prereq.js';
import { tmpDir } from '../helpers/tmp.js';

// `juicefs info` of a 300 MiB file written at 64 MiB - 50 (100 bytes, across a chunk
// boundary) and at 200 MiB (10 bytes), then extended by ftruncate (juicefs 1.4.2).
const MIXED = `mnt/mixed :
  inode: 5
  files: 1
   dirs: 0
 length: 300.00 MiB (314572800 Bytes)
   size: 300.00 MiB (314572800 Bytes)
   path: /mixed
   tier: 0->actual()
 objects:
+------------+-----------------------+----------+--------+----------+-----------+
| chunkIndex |       objectName      |   size   | offset |  length  |    pos    |
+------------+-----------------------+----------+--------+----------+-----------+
|          0 |                       | 67108814 |      0 | 67108814 |         0 |
|          0 | h14/chunks/0/0/6_0_50 |       50 |      0 |       50 |  67108814 |
|          1 | h14/chunks/0/0/5_0_50 |       50 |      0 |       50 |  67108864 |
|          3 |                       |  8388608 |      0 |  8388608 | 201326592 |
|          3 | h14/chunks/0/0/7_0_10 |       10 |      0 |       10 | 209715200 |
|          3 |                       |        0 |      0 | 58720246 | 209715210 |
|          4 |                       |        0 |      0 | 46137344 | 268435456 |
+------------+-----------------------+----------+--------+----------+-----------+
`;
const SIZE = 314572800;

describe('juicefs info → data runs (src/engines/juicefsRuns.ts)', () => {
  it('takes the rows naming an object, merges adjacent ones, leaves zero slices and gaps out', () => {
    expect([...parseObjectRuns(MIXED, SIZE)!].map(Number)).toEqual([67108814, 67108914, 209715200, 209715210]);
  });

  it('a file that is all hole has no runs', () => {
    const hole = MIXED.split('\n').filter((l) => !l.includes('h14/chunks')).join('\n');
    expect([...parseObjectRuns(hole, SIZE)!]).toEqual([]);
  });

  it('anything unexpected gives undefined (the caller then reads the whole file)', () => {
    expect(parseObjectRuns(MIXED, SIZE + 1)).toBeUndefined(); // another length than the file's
    expect(parseObjectRuns(MIXED.replace('objectName', 'sliceId'), SIZE)).toBeUndefined(); // another table (--raw)
    expect(parseObjectRuns(MIXED.replace('| 209715200 |', '| 999999999 |'), SIZE)).toBeUndefined(); // a row past the end
    expect(parseObjectRuns(MIXED.replace('|       10 | 209715200 |', '|      ten | 209715200 |'), SIZE)).toBeUndefined();
    expect(parseObjectRuns(MIXED.replace(' objects:', ' chunks:'), SIZE)).toBeUndefined();
    expect(parseObjectRuns('', SIZE)).toBeUndefined();
  });
});

describe('the addon\'s hashRuns (native/jvs_hash.c: the sparse walk with given data runs)', () => {
  const missing = native()?.hashRuns ? undefined : 'the addon is not built with hashRuns (node scripts/build-native.mjs)';
  itWith('native addon', missing, 'reads only the runs and hashes every other byte as zero', () => {
    const file = path.join(tmpDir(), 'f');
    const content = Buffer.alloc(3 << 20);
    content.fill('a', 100, 200);
    content.fill('b', 2 << 20, (2 << 20) + 10);
    fs.writeFileSync(file, content);
    const want = createHash('sha256').update(content).digest('hex');
    const runs = (pairs: number[]) => BigInt64Array.from(pairs, (n) => BigInt(n));
    expect(native()!.hashRuns!(file, runs([100, 200, 2 << 20, (2 << 20) + 10]))).toEqual({ hash: want, size: content.length });
    expect(native()!.hashRuns!(file, runs([0, 4096, 4096, 8192, 2 << 20, 3 << 20])).hash).toBe(want); // wider runs read zeros: same hash
    // A run left out is hashed as zeros, not read: the hash shows it (the runs really steer the reads).
    const withoutB = Buffer.from(content);
    withoutB.fill(0, 2 << 20, (2 << 20) + 10);
    expect(native()!.hashRuns!(file, runs([100, 200])).hash).toBe(createHash('sha256').update(withoutB).digest('hex'));
    expect(() => native()!.hashRuns!(file, runs([200, 100]))).toThrow(/sorted/);
  });

  itWith('native addon', missing, 'with a root, opens the file below it and refuses a symlink on the way (ELOOP), as verify needs', () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'root', 'sub'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'outside'));
    fs.writeFileSync(path.join(dir, 'root', 'sub', 'f'), 'inside');
    fs.writeFileSync(path.join(dir, 'outside', 'f'), 'outside');
    fs.symlinkSync(path.join(dir, 'outside'), path.join(dir, 'root', 'swapped'));
    const runs = BigInt64Array.from([0n, 7n]);
    expect(native()!.hashRuns!('sub/f', runs, path.join(dir, 'root')).hash).toBe(createHash('sha256').update('inside').digest('hex'));
    expect(() => native()!.hashRuns!('swapped/f', runs, path.join(dir, 'root'))).toThrow(expect.objectContaining({ code: 'ELOOP' }));
    expect(() => native()!.hashRuns!('../outside/f', runs, path.join(dir, 'root'))).toThrow(expect.objectContaining({ code: 'EXDEV' }));
  });
});

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect } from 'vitest';
import { itWith } from '../helpers/prereq.js';

// Manifest records (src/fsutil/entryRecord.ts) keep one V8 hidden class whatever sizes
// they hold. When they were object literals, one record with a size of 1 GiB or more
// (no small integer) made anywhere retired the hidden class of every record decoded
// before it, and each was converted again on its next read: 8 ms of a 10,000-file
// snapshot, and ~0.8 s per million records. V8 says whether two objects share a hidden
// class only to a process started with --allow-natives-syntax, hence the child process
// on the built dist/.
const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist');
const missing = fs.existsSync(path.join(dist, 'fsutil/entryRecord.js')) ? undefined : 'dist/ not built (run `npm run build`)';

describe('manifest records (EntryRecord)', () => {
  itWith('built dist/', missing, 'keep their hidden class when a record of 1 TiB is decoded or walked among small ones', () => {
    const script = `
      const dist = process.argv[1];
      const { encodeEntries, decodeEntries } = await import(dist + '/index/manifestCodec.js');
      const { statRecord } = await import(dist + '/fsutil/walk.js');
      const file = (i, size) => ({ rel: 'd/f' + i, type: 'file', mode: 0o644, size, mtimeNs: 1n, ctimeNs: 1n, dev: 1n, ino: BigInt(i), contentHash: 'ab'.repeat(32) });
      const chunk = (from, size) => encodeEntries(Array.from({ length: 50 }, (_, i) => file(from + i, size)));
      const first = decodeEntries(chunk(0, 4096));
      const stat = { mode: 0o100644n, size: 10n, mtimeNs: 1n, ctimeNs: 1n, dev: 1n, ino: 9n };
      const small = statRecord({ rel: 'small', type: 'file', stat });
      const huge = statRecord({ rel: 'huge', type: 'file', stat: { ...stat, size: 2n ** 40n } });
      const big = decodeEntries(chunk(100, 2 ** 40));
      const later = decodeEntries(chunk(200, 4096));
      // Asked before any field is read: a read converts a record to the newer hidden class.
      const maps = { decodedLater: %HaveSameMap(first[0], later[0]), decodedBig: %HaveSameMap(first[0], big[0]), walked: %HaveSameMap(small, huge) };
      process.stdout.write(JSON.stringify({ ...maps, sizes: [first[0].size, big[0].size, later[0].size, small.size, huge.size] }));`;
    const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script, dist], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out.sizes).toEqual([4096, 2 ** 40, 4096, 10, 2 ** 40]);
    expect(out).toMatchObject({ decodedLater: true, decodedBig: true, walked: true });
  });
});

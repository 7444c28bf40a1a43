import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jvsOk } from '../helpers/cli.js';
import { bytes, newRepo, restore, snap, verifyAll } from './helpers.js';

describe('large trees (copies spread over two threads)', () => {
  it('a 96 MiB first snapshot with user hard links verifies, and restores byte for byte', () => {
    const { main, snaps } = newRepo();
    const pool = bytes(1 << 20, 7);
    for (let i = 0; i < 24; i++) {
      const b = Buffer.alloc(4 << 20);
      for (let o = 0; o < b.length; o += pool.length) pool.copy(b, o);
      b.writeUInt32LE(i, 12345);
      fs.mkdirSync(path.join(main, `d${i % 3}`), { recursive: true });
      fs.writeFileSync(path.join(main, `d${i % 3}/big${i}.bin`), b);
    }
    // A user hard link whose first path is copied by the queue: the link must wait for it.
    fs.linkSync(path.join(main, 'd0/big0.bin'), path.join(main, 'd2/zz-link.bin'));
    const s1 = snap(main, 'big');
    expect(s1.incremental.copied).toBe(24);
    const dir = path.join(snaps, s1.snapshot_id);
    expect(fs.statSync(path.join(dir, 'd2/zz-link.bin')).ino).toBe(fs.statSync(path.join(dir, 'd0/big0.bin')).ino);
    expect(verifyAll(main).severity).toBe('ok');
    fs.writeFileSync(path.join(main, 'd1/big1.bin'), 'small now');
    fs.rmSync(path.join(main, 'd2/zz-link.bin'));
    restore(main, 'HEAD');
    expect(fs.readFileSync(path.join(main, 'd1/big1.bin')).equals(fs.readFileSync(path.join(dir, 'd1/big1.bin')))).toBe(true);
    expect(fs.statSync(path.join(main, 'd2/zz-link.bin')).ino).toBe(fs.statSync(path.join(main, 'd0/big0.bin')).ino);
    expect(jvsOk(['status', '--json'], { cwd: main }).json().clean).toBe(true);
  });
});

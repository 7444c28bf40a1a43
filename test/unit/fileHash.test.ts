import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { copyAndHash, hashFile, hashFiles, HashMode, nativeHashMany } from '../../src/fsutil/fileHash.js';
import { itWith } from '../helpers/prereq.js';
import { tmpDir } from '../helpers/tmp.js';

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const NATIVE_MISSING = nativeHashMany() ? undefined : 'native addon without hashMany (run `node scripts/build-native.mjs`, and do not set JVS_DISABLE_NATIVE)';
const MiB = 1 << 20;

/** Deterministic, non-repeating content (a repeating pattern could hide an offset bug). */
function content(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let block = crypto.createHash('sha256').update(`seed ${seed}`).digest();
  for (let o = 0; o < size; o += 32) {
    block.copy(out, o, 0, Math.min(32, size - o));
    block = crypto.createHash('sha256').update(block).digest();
  }
  return out;
}

/** Sizes around the native buffer (256 KiB) and the JavaScript buffer (1 MiB). */
const SIZES = { empty: 0, one: 1, small: 1000, buf: 256 << 10, bufPlus1: (256 << 10) + 1, mib: MiB, mibMinus1: MiB - 1, multi: 5 * MiB + 12345 };

function writeSizes(dir: string): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  let seed = 0;
  for (const [name, size] of Object.entries(SIZES)) {
    files[name] = content(size, seed++);
    fs.writeFileSync(path.join(dir, name), files[name]!);
  }
  return files;
}

describe('native SHA-256 (native/jvs_hash.c hashMany)', () => {
  itWith('native addon', NATIVE_MISSING, 'hashFile equals node:crypto for empty, small, 256 KiB±1, exactly 1 MiB and multi-MiB files', () => {
    const dir = tmpDir();
    const files = writeSizes(dir);
    for (const [name, bytes] of Object.entries(files)) expect(hashFile(path.join(dir, name)), name).toBe(sha(bytes));
  });

  itWith('native addon', NATIVE_MISSING, 'hashes many files on several threads, each hash and size belonging to its own file', () => {
    const dir = tmpDir();
    const paths: string[] = [];
    const want: string[] = [];
    const sizes: number[] = [];
    for (let i = 0; i < 300; i++) {
      const b = content(1 + ((i * 7919) % 200_000), 1000 + i);
      const p = path.join(dir, `f${i}`);
      fs.writeFileSync(p, b);
      paths.push(p);
      want.push(sha(b));
      sizes.push(b.length);
    }
    const r = nativeHashMany()!(paths.join('\0') + '\0', paths.length, HashMode.hash, null, 2);
    const got = Array.from({ length: paths.length }, (_, i) => r.hashes.slice(64 * i, 64 * i + 64));
    expect(got).toEqual(want);
    expect(Array.from(r.sizes)).toEqual(sizes);
    // The second thread took part (300 files take far longer than a thread start).
    expect(r.byOtherThreads).toBeGreaterThan(0);
    expect(r.byOtherThreads).toBeLessThan(paths.length);
    // hashFiles (the batched wrapper) agrees and reports the bytes it read.
    let reported = 0;
    expect(hashFiles(paths, (b) => (reported = b))).toEqual(want);
    expect(reported).toBe(sizes.reduce((a, b) => a + b, 0));
  });

  itWith('native addon', NATIVE_MISSING, 'a missing file is an error with an errno code naming the path, never a hash', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'here'), 'x');
    const paths = [path.join(dir, 'here'), path.join(dir, 'gone'), path.join(dir, 'here')];
    let err: (Error & { code?: string; path?: string; syscall?: string; index?: number }) | undefined;
    try {
      hashFiles(paths);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err!.code).toBe('ENOENT');
    expect(err!.path).toBe(path.join(dir, 'gone'));
    expect(err!.syscall).toBe('open');
    expect(err!.index).toBe(1);
    expect(() => hashFile(path.join(dir, 'gone'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    // A directory is not a file: EISDIR when read.
    expect(() => hashFile(dir)).toThrow(expect.objectContaining({ code: 'EISDIR' }));
  });

  itWith('native addon', NATIVE_MISSING, 'hashing leaves the atime of what it reads alone (O_NOATIME: the owner or root may)', () => {
    const dir = tmpDir();
    const f = path.join(dir, 'old');
    fs.writeFileSync(f, 'read me');
    const old = new Date('2001-01-01T00:00:00Z');
    fs.utimesSync(f, old, fs.statSync(f).mtime);
    expect(hashFile(f)).toBe(sha(Buffer.from('read me')));
    expect(hashFiles([f, f])).toEqual([sha(Buffer.from('read me')), sha(Buffer.from('read me'))]);
    expect(fs.statSync(f).atimeMs).toBe(old.getTime());
    // Control: a plain read does move it here (relatime: atime older than mtime), so
    // the assertion above can fail.
    fs.readFileSync(f);
    expect(fs.statSync(f).atimeMs).not.toBe(old.getTime());
  });

  itWith('native addon', NATIVE_MISSING, 'copyAndHash copies the exact bytes, hashes them, and gives the destination the exact mode (even bits the umask removes)', () => {
    const dir = tmpDir();
    const files = writeSizes(dir);
    for (const [name, bytes] of Object.entries(files)) {
      const dst = path.join(dir, `${name}.copy`);
      const r = copyAndHash(path.join(dir, name), dst, 0o4777);
      expect(r, name).toEqual({ hash: sha(bytes), size: bytes.length });
      expect(fs.readFileSync(dst).equals(bytes), name).toBe(true);
      expect(fs.statSync(dst).mode & 0o7777).toBe(0o4777);
    }
    // The destination must not exist: copies never overwrite.
    expect(() => copyAndHash(path.join(dir, 'small'), path.join(dir, 'small.copy'), 0o644)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
  });
});

describe('JavaScript fallback (JVS_DISABLE_NATIVE=1)', () => {
  const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/fsutil/fileHash.js');
  const missing = fs.existsSync(dist) ? undefined : 'dist/ not built (run `npm run build`)';

  itWith('built dist/', missing, 'gives the same hashes and copies as node:crypto without the addon', () => {
    const dir = tmpDir();
    const files = writeSizes(dir);
    const script = `
      const { hashFile, hashFiles, copyAndHash, nativeHashMany } = await import(${JSON.stringify(dist)});
      const [dir, ...names] = process.argv.slice(1);
      const p = (n) => dir + '/' + n;
      process.stdout.write(JSON.stringify({
        native: nativeHashMany() !== undefined,
        one: names.map((n) => hashFile(p(n))),
        many: hashFiles(names.map(p)),
        copies: names.map((n) => copyAndHash(p(n), p(n + '.c'), 0o600)),
      }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, dir, ...Object.keys(files)], { encoding: 'utf8', env: { ...process.env, JVS_DISABLE_NATIVE: '1' } });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    const want = Object.values(files).map(sha);
    expect(out.native).toBe(false);
    expect(out.one).toEqual(want);
    expect(out.many).toEqual(want);
    expect(out.copies).toEqual(Object.values(files).map((b) => ({ hash: sha(b), size: b.length })));
    for (const [name, bytes] of Object.entries(files)) expect(fs.readFileSync(path.join(dir, `${name}.c`)).equals(bytes)).toBe(true);
  });
});

it('hashFile of a path that is not there throws ENOENT (with or without the addon)', () => {
  expect(() => hashFile(path.join(tmpDir(), 'nothing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
});

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { descriptorChecksum } from '../../src/format/descriptor.js';
import { payloadRootHash } from '../../src/format/payloadHash.js';
import { recoverModes, type LogicalEntry } from '../../src/verify/compressedPayload.js';
import { createHash } from 'node:crypto';
import { writeFiles } from '../helpers/tmp.js';
import { expectError, newRepo, run, snapshot } from '../integrity/support.js';
import { treeFacts } from './referenceFixture.js';

/**
 * `jvs snapshot --compress` writes the reference's layout (every file `<name>.gz`,
 * `.READY.gz`, a `compression` descriptor field); restore, fork and verify read it.
 */

function workspace() {
  const repo = newRepo();
  writeFiles(repo.main, { 'a.txt': 'alpha\n'.repeat(100), 'sub/b.bin': 'bravo', 'sub/deep/c.txt': 'charlie', 'x': 'plain x', 'x.gz': 'not really gzip', 'empty': '' });
  fs.mkdirSync(path.join(repo.main, 'void'));
  fs.chmodSync(path.join(repo.main, 'sub/b.bin'), 0o755);
  fs.chmodSync(path.join(repo.main, 'sub/deep/c.txt'), 0o600);
  fs.symlinkSync('../a.txt', path.join(repo.main, 'sub/link'));
  fs.linkSync(path.join(repo.main, 'a.txt'), path.join(repo.main, 'a-hard'));
  fs.mkdirSync(path.join(repo.main, 'ro'));
  fs.writeFileSync(path.join(repo.main, 'ro/f'), 'read-only folder\n');
  fs.chmodSync(path.join(repo.main, 'ro'), 0o555);
  return repo;
}

describe('snapshot --compress writes the reference layout', () => {
  it.each([['fast', 1], ['default', 6], ['max', 9]] as const)('--compress %s: <name>.gz files, .READY.gz, "compression":{"type":"gzip","level":%i}', (level, n) => {
    const repo = workspace();
    const before = treeFacts(repo.main);
    const id = snapshot(repo, `compressed ${level}`, ['--compress', level]);
    const dir = path.join(repo.ctl, 'snapshots', id);
    const d = JSON.parse(fs.readFileSync(path.join(repo.ctl, 'descriptors', `${id}.json`), 'utf8'));
    expect(d.compression).toEqual({ type: 'gzip', level: n });
    expect(descriptorChecksum(d)).toBe(d.descriptor_checksum);
    const stored = treeFacts(dir, () => false).entries;
    expect(Object.keys(stored).sort()).toEqual(['.READY.gz', 'a-hard.gz', 'a.txt.gz', 'empty.gz', 'ro/', 'ro/f.gz', 'sub/', 'sub/b.bin.gz', 'sub/deep/', 'sub/deep/c.txt.gz', 'sub/link', 'void/', 'x.gz', 'x.gz.gz'].sort());
    // Each .gz holds its file's bytes and keeps its mode; a user's own x.gz is stored as x.gz.gz.
    expect(zlib.gunzipSync(fs.readFileSync(path.join(dir, 'x.gz'))).toString()).toBe('plain x');
    expect(zlib.gunzipSync(fs.readFileSync(path.join(dir, 'x.gz.gz'))).toString()).toBe('not really gzip');
    expect(fs.statSync(path.join(dir, 'sub/b.bin.gz')).mode & 0o777).toBe(0o755);
    expect(fs.statSync(path.join(dir, 'ro')).mode & 0o777).toBe(0o555);
    expect(fs.statSync(path.join(dir, 'a.txt.gz')).ino).toBe(fs.statSync(path.join(dir, 'a-hard.gz')).ino);
    const ready = JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(dir, '.READY.gz'))).toString());
    expect(ready).toMatchObject({ snapshot_id: id, payload_root_hash: d.payload_root_hash, descriptor_checksum: d.descriptor_checksum });

    expect(run(['verify', id, '--json'], repo.main).json()).toMatchObject({ checksum_valid: true, payload_hash_valid: true, ready_valid: true });
    // Restore gives the tree back exactly, hard link included, with no .gz left behind.
    for (const name of fs.readdirSync(repo.main)) if (name !== 'ro') fs.rmSync(path.join(repo.main, name), { recursive: true });
    const r = run(['restore', id, '--json'], repo.main);
    expect(r.code, r.stdout).toBe(0);
    expect(treeFacts(repo.main)).toEqual(before);
    expect(run(['status', '--json'], repo.main).json().clean).toBe(true);
  });

  it('--compress none writes a plain snapshot with no compression field; a bad level is E_USAGE', () => {
    const repo = workspace();
    const id = snapshot(repo, 'plain', ['--compress', 'none']);
    expect(JSON.parse(fs.readFileSync(path.join(repo.ctl, 'descriptors', `${id}.json`), 'utf8')).compression).toBeUndefined();
    expect(fs.existsSync(path.join(repo.ctl, 'snapshots', id, 'a.txt'))).toBe(true);
    expectError(run(['snapshot', 'x', '--compress', 'extreme', '--json'], repo.main), 'E_USAGE');
  });

  it('the same tree hashes the same compressed or not (the root hash describes the tree before compression)', () => {
    const repo = workspace();
    const a = run(['snapshot', 'plain', '--json'], repo.main).json();
    const b = run(['snapshot', 'gz', '--compress', 'fast', '--json'], repo.main).json();
    const c = run(['snapshot', 'plain again', '--json'], repo.main).json();
    expect(b.payload_root_hash).toBe(a.payload_root_hash);
    expect(c.payload_root_hash).toBe(a.payload_root_hash);
    expect(run(['verify', '--all', '--json'], repo.main).code).toBe(0);
    // diff reads a compressed snapshot as its tree: nothing differs from the plain twin.
    expect(run(['diff', a.snapshot_id, b.snapshot_id, '--json'], repo.main).json()).toMatchObject({ total_added: 0, total_removed: 0, total_modified: 0 });
    fs.writeFileSync(path.join(repo.main, 'x'), 'changed');
    expect(run(['diff', b.snapshot_id, '--json'], repo.main).json()).toMatchObject({ modified: ['x'], total_added: 0, total_removed: 0 });
    run(['worktree', 'fork', b.snapshot_id, 'side'], repo.main);
    expect(treeFacts(path.join(repo.root, 'worktrees/side')).entries).toEqual(treeFacts(path.join(repo.ctl, 'snapshots', a.snapshot_id)).entries);
  });
});

describe('damage in a compressed snapshot', () => {
  it('a .gz whose content was replaced (valid gzip) → verify E_PAYLOAD_HASH_MISMATCH, restore refuses and writes nothing', () => {
    const repo = workspace();
    const id = snapshot(repo, 'gz', ['--compress', 'fast']);
    const f = path.join(repo.ctl, 'snapshots', id, 'sub/deep/c.txt.gz');
    fs.chmodSync(f, 0o600);
    fs.writeFileSync(f, zlib.gzipSync(Buffer.from('tampered')));
    expectError(run(['verify', id, '--json'], repo.main), 'E_PAYLOAD_HASH_MISMATCH');
    fs.writeFileSync(path.join(repo.main, 'a.txt'), 'local\n');
    const before = treeFacts(repo.main);
    expectError(run(['restore', id, '--json'], repo.main), 'E_PAYLOAD_HASH_MISMATCH');
    expect(treeFacts(repo.main)).toEqual(before);
  });

  it('a .gz that is not gzip → E_PAYLOAD_HASH_MISMATCH naming the file', () => {
    const repo = workspace();
    const id = snapshot(repo, 'gz', ['--compress', 'max']);
    const f = path.join(repo.ctl, 'snapshots', id, 'sub/deep/c.txt.gz');
    fs.chmodSync(f, 0o600);
    fs.writeFileSync(f, 'garbage');
    const v = run(['verify', id, '--json'], repo.main);
    expectError(v, 'E_PAYLOAD_HASH_MISMATCH');
    expect(v.stdout).toContain('sub/deep/c.txt.gz');
  });
});

describe("modes lost by the reference's compression are recovered with the root hash as oracle", () => {
  it('a compressed snapshot whose .gz files are all 0600 (as the reference writes them) still verifies and restores the real modes', () => {
    const repo = workspace();
    const id = snapshot(repo, 'gz', ['--compress', 'fast']);
    const dir = path.join(repo.ctl, 'snapshots', id);
    for (const rel of ['a.txt.gz', 'sub/b.bin.gz', 'sub/deep/c.txt.gz', 'x.gz', 'x.gz.gz', 'empty.gz']) fs.chmodSync(path.join(dir, rel), 0o600);
    // No other copy of the files to take hints from: the search alone finds the modes.
    fs.rmSync(repo.main, { recursive: true, force: true, maxRetries: 2 });
    fs.mkdirSync(repo.main);
    expect(run(['verify', id, '--json'], repo.main).json()).toMatchObject({ payload_hash_valid: true });
    expect(run(['restore', id, '--json'], repo.main).code).toBe(0);
    expect(fs.statSync(path.join(repo.main, 'sub/b.bin')).mode & 0o777).toBe(0o755);
    expect(fs.statSync(path.join(repo.main, 'sub/deep/c.txt')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(repo.main, 'a.txt')).mode & 0o777).toBe(0o644);
  });

  it('recoverModes finds a two-file change, and gives up (undefined) when no assignment matches', () => {
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const entries: LogicalEntry[] = ['a', 'b', 'c', 'd'].map((n) => ({ rel: n, stored: `${n}.gz`, type: 'file', mode: 0o600, size: 1, contentHash: sha(n), mtimeMs: 0 }));
    const real = entries.map((e) => ({ ...e, mode: e.rel === 'b' ? 0o755 : e.rel === 'd' ? 0o640 : 0o644 }));
    const found = recoverModes(entries, payloadRootHash(real), () => [], () => false);
    expect(Object.fromEntries(found!)).toEqual({ a: 0o644, b: 0o755, c: 0o644, d: 0o640 });
    expect(recoverModes(entries, 'f'.repeat(64), () => [], () => false)).toBeUndefined();
  });

  it.each([['a path holding ":" (every attempt re-sorts)', 'x:y'], ['an astral character (byte order, not UTF-16 order)', '😀'], ['an ASCII name', 'zz']])('recoverModes with %s', (_what, odd) => {
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const names = ['a', odd, 'ｚ', 'b/c'];
    const entries: LogicalEntry[] = [
      { rel: 'b', stored: 'b', type: 'dir', mode: 0o755, size: 0, mtimeMs: 0 },
      ...names.map((n): LogicalEntry => ({ rel: n, stored: `${n}.gz`, type: 'file', mode: 0o600, size: n.length, contentHash: sha(n), mtimeMs: 0 })),
    ];
    const real = entries.map((e) => (e.rel === odd ? { ...e, mode: 0o755 } : e.rel === 'b/c' ? { ...e, mode: 0o664 } : e.type === 'file' ? { ...e, mode: 0o644 } : e));
    expect(Object.fromEntries(recoverModes(entries, payloadRootHash(real), () => [], () => false)!)).toEqual({ a: 0o644, [odd]: 0o755, 'ｚ': 0o644, 'b/c': 0o664 });
    // A hint is tried first: with the right one, no search step is needed at all.
    expect(Object.fromEntries(recoverModes(entries, payloadRootHash(real), (rel) => (rel === odd ? [0o755] : rel === 'b/c' ? [0o664] : []), () => false)!)).toEqual({ a: 0o644, [odd]: 0o755, 'ｚ': 0o644, 'b/c': 0o664 });
  });
});

describe('a compressed snapshot killed while publishing is finished or rolled back by doctor', () => {
  it.each(['snapshot.3-fsync', 'snapshot.6-ready', 'snapshot.7-publish-dir', 'snapshot.8-publish-descriptor'])('killed at %s', (step) => {
    const repo = workspace();
    const first = snapshot(repo, 'one');
    fs.writeFileSync(path.join(repo.main, 'a.txt'), 'changed\n');
    const r = run(['snapshot', 'gz', '--compress', 'fast'], repo.main, { JVS_FAULT: step });
    expect(r.signal).toBe('SIGKILL');
    const d = run(['doctor', '--strict', '--repair-runtime', '--json'], repo.main);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    const v = run(['verify', '--all', '--json'], repo.main);
    expect(v.code, v.stdout).toBe(0);
    const ids = v.json().results.map((x: any) => x.snapshot_id);
    expect(ids).toContain(first);
    // Published at step 7 or later: doctor finished it, and it reads back as the tree.
    if (step === 'snapshot.7-publish-dir' || step === 'snapshot.8-publish-descriptor') expect(ids).toHaveLength(2);
    expect(fs.readdirSync(path.join(repo.ctl, 'snapshots')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

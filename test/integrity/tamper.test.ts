import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { descriptorChecksum, serializeDescriptor } from '../../src/format/descriptor.js';
import { writeFiles } from '../helpers/tmp.js';
import { expectError, newRepo, run, snapshot, type Repo } from './support.js';

/** A repository with two snapshots; the first is the one we damage. */
function twoSnapshots(): { repo: Repo; first: string; second: string; dir: string } {
  const repo = newRepo();
  writeFiles(repo.main, { 'a.txt': 'alpha\n', 'sub/b.bin': 'bravo', 'sub/c.txt': 'charlie' });
  const first = snapshot(repo, 'first');
  fs.writeFileSync(path.join(repo.main, 'a.txt'), 'changed\n');
  const second = snapshot(repo, 'second');
  return { repo, first, second, dir: path.join(repo.ctl, 'snapshots', first) };
}

function verifyAll(repo: Repo) {
  return run(['verify', '--all', '--json'], repo.main);
}

function damagedEntry(r: ReturnType<typeof verifyAll>, id: string) {
  return r.json().results.find((x: any) => x.snapshot_id === id);
}

describe('verify detects each kind of damage with its own error class', () => {
  it('a healthy repository verifies clean, with the required JSON fields', () => {
    const { repo } = twoSnapshots();
    const r = verifyAll(repo);
    expect(r.code).toBe(0);
    const doc = r.json();
    expect(doc.tamper_detected).toBe(false);
    expect(doc.severity).toBe('ok');
    for (const x of doc.results) {
      expect(x).toMatchObject({ checksum_valid: true, payload_hash_valid: true, tamper_detected: false, severity: 'ok' });
    }
    const one = run(['verify', '--json'], repo.main).json();
    expect(one).toMatchObject({ checksum_valid: true, payload_hash_valid: true, tamper_detected: false, severity: 'ok' });
  });

  it('one changed payload byte → E_PAYLOAD_HASH_MISMATCH', () => {
    const { repo, first, dir } = twoSnapshots();
    const f = path.join(dir, 'sub/b.bin');
    fs.chmodSync(f, 0o644);
    const mode = fs.statSync(f).mode;
    fs.writeFileSync(f, 'brAvo');
    fs.chmodSync(f, mode & 0o7777);
    const r = verifyAll(repo);
    expectError(r, 'E_PAYLOAD_HASH_MISMATCH');
    expect(damagedEntry(r, first)).toMatchObject({ checksum_valid: true, payload_hash_valid: false, tamper_detected: true, severity: 'critical' });
  });

  it('one changed mode bit → E_PAYLOAD_HASH_MISMATCH', () => {
    const { repo, first, dir } = twoSnapshots();
    const f = path.join(dir, 'sub/c.txt');
    fs.chmodSync(f, (fs.statSync(f).mode & 0o7777) ^ 0o001);
    const r = verifyAll(repo);
    expectError(r, 'E_PAYLOAD_HASH_MISMATCH');
    expect(damagedEntry(r, first).payload_hash_valid).toBe(false);
  });

  it('an added file → E_PAYLOAD_HASH_MISMATCH', () => {
    const { repo, first, dir } = twoSnapshots();
    fs.writeFileSync(path.join(dir, 'sub/intruder'), 'x');
    const r = verifyAll(repo);
    expectError(r, 'E_PAYLOAD_HASH_MISMATCH');
    expect(damagedEntry(r, first).tamper_detected).toBe(true);
  });

  it('a removed file → E_PAYLOAD_HASH_MISMATCH', () => {
    const { repo, first, dir } = twoSnapshots();
    fs.rmSync(path.join(dir, 'sub/c.txt'));
    const r = verifyAll(repo);
    expectError(r, 'E_PAYLOAD_HASH_MISMATCH');
    expect(damagedEntry(r, first).payload_hash_valid).toBe(false);
  });

  it('a retargeted symlink or a folder mode change → E_PAYLOAD_HASH_MISMATCH', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'alpha', 'sub/b.txt': 'bravo' });
    fs.symlinkSync('a.txt', path.join(repo.main, 'link'));
    const id = snapshot(repo, 'links');
    const dir = path.join(repo.ctl, 'snapshots', id);
    fs.chmodSync(dir, 0o755);
    fs.rmSync(path.join(dir, 'link'));
    fs.symlinkSync('sub/b.txt', path.join(dir, 'link'));
    expectError(run(['verify', id, '--json'], repo.main), 'E_PAYLOAD_HASH_MISMATCH');
    fs.rmSync(path.join(dir, 'link'));
    fs.symlinkSync('a.txt', path.join(dir, 'link'));
    expect(run(['verify', id, '--json'], repo.main).code).toBe(0);
    const sub = path.join(dir, 'sub');
    fs.chmodSync(sub, (fs.statSync(sub).mode & 0o7777) ^ 0o020);
    expectError(run(['verify', id, '--json'], repo.main), 'E_PAYLOAD_HASH_MISMATCH');
  });

  it('a changed descriptor field → E_DESCRIPTOR_CORRUPT', () => {
    const { repo, first } = twoSnapshots();
    const file = path.join(repo.ctl, 'descriptors', `${first}.json`);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"note":"first"', '"note":"forged"'));
    const r = verifyAll(repo);
    expectError(r, 'E_DESCRIPTOR_CORRUPT');
    expect(damagedEntry(r, first)).toMatchObject({ checksum_valid: false, tamper_detected: true });
    // Verifying that snapshot alone reports the same class.
    expectError(run(['verify', first, '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
  });

  it('every single-byte flip of a descriptor is detected', () => {
    const { repo, first } = twoSnapshots();
    const file = path.join(repo.ctl, 'descriptors', `${first}.json`);
    const orig = fs.readFileSync(file);
    // Sample positions across the whole file (every byte would cost a process each).
    const step = Math.max(1, Math.floor(orig.length / 12));
    for (let i = 0; i < orig.length - 1; i += step) {
      const bad = Buffer.from(orig);
      bad[i] = bad[i]! ^ 0x01;
      fs.writeFileSync(file, bad);
      const r = verifyAll(repo);
      expect(r.code, `flip at byte ${i}`).not.toBe(0);
      expect(['E_DESCRIPTOR_CORRUPT', 'E_PAYLOAD_HASH_MISMATCH', 'E_LINEAGE_BROKEN', 'E_NOT_FOUND', 'E_PARTIAL_SNAPSHOT']).toContain(r.json().error.class);
      expect(r.json().tamper_detected ?? true).toBe(true);
    }
    fs.writeFileSync(file, orig);
    expect(verifyAll(repo).code).toBe(0);
  });

  it('an edited audit line → E_AUDIT_CHAIN_BROKEN', () => {
    const { repo } = twoSnapshots();
    const log = path.join(repo.ctl, 'audit/audit.jsonl');
    const lines = fs.readFileSync(log, 'utf8').split('\n');
    lines[1] = lines[1]!.replace('"snapshot_create"', '"snapshot_delete"');
    fs.writeFileSync(log, lines.join('\n'));
    const r = verifyAll(repo);
    expectError(r, 'E_AUDIT_CHAIN_BROKEN');
    expect(r.json().audit_chain_valid).toBe(false);
  });

  it('a deleted audit line → E_AUDIT_CHAIN_BROKEN', () => {
    const { repo } = twoSnapshots();
    const log = path.join(repo.ctl, 'audit/audit.jsonl');
    const lines = fs.readFileSync(log, 'utf8').split('\n');
    lines.splice(1, 1);
    fs.writeFileSync(log, lines.join('\n'));
    expectError(verifyAll(repo), 'E_AUDIT_CHAIN_BROKEN');
  });

  it('a missing snapshot folder or .READY marker → E_PARTIAL_SNAPSHOT', () => {
    const { repo, first, second } = twoSnapshots();
    fs.rmSync(path.join(repo.ctl, 'snapshots', second, '.READY'));
    expectError(run(['verify', second, '--json'], repo.main), 'E_PARTIAL_SNAPSHOT');
    fs.rmSync(path.join(repo.ctl, 'snapshots', first), { recursive: true });
    expectError(run(['verify', first, '--json'], repo.main), 'E_PARTIAL_SNAPSHOT');
  });

  it('a parent that does not exist → E_LINEAGE_BROKEN', () => {
    const { repo, first } = twoSnapshots();
    fs.rmSync(path.join(repo.ctl, 'descriptors', `${first}.json`));
    fs.rmSync(path.join(repo.ctl, 'snapshots', first), { recursive: true });
    expectError(verifyAll(repo), 'E_LINEAGE_BROKEN');
  });

  it('a worktree head naming a missing snapshot → E_LINEAGE_BROKEN', () => {
    const { repo } = twoSnapshots();
    const cfgFile = path.join(repo.ctl, 'worktrees/main/config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    cfg.head_snapshot_id = cfg.latest_snapshot_id = '1700000000000-deadbeef';
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    const r = verifyAll(repo);
    expectError(r, 'E_LINEAGE_BROKEN');
    expect(r.json().lineage_problems[0].worktree).toBe('main');
  });

  it('parent links forming a cycle (checksums re-forged) → E_LINEAGE_BROKEN', () => {
    const { repo, first, second } = twoSnapshots();
    // Re-forge `first` so its parent is `second`: checksum and .READY made consistent,
    // so only the lineage check can notice.
    const file = path.join(repo.ctl, 'descriptors', `${first}.json`);
    const d = JSON.parse(fs.readFileSync(file, 'utf8'));
    d.parent_id = second;
    d.descriptor_checksum = descriptorChecksum(d);
    fs.writeFileSync(file, serializeDescriptor(d));
    const ready = path.join(repo.ctl, 'snapshots', first, '.READY');
    fs.chmodSync(ready, 0o644);
    const r0 = JSON.parse(fs.readFileSync(ready, 'utf8'));
    fs.writeFileSync(ready, JSON.stringify({ ...r0, descriptor_checksum: d.descriptor_checksum }));
    expect(run(['verify', first, '--json'], repo.main).code).toBe(0);
    const r = verifyAll(repo);
    expectError(r, 'E_LINEAGE_BROKEN');
    expect(r.json().lineage_problems[0].problem).toContain('cycle');
    expectError(run(['doctor', '--json'], repo.main), 'E_LINEAGE_BROKEN');
  });
});

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { auditRecordHash, checkAuditChain } from '../../src/format/audit.js';
import { canonicalJson } from '../../src/format/canonicalJson.js';
import { checksumRule, descriptorChecksum } from '../../src/format/descriptor.js';
import { jvs, jvsOk } from '../helpers/cli.js';
import { expectedJson, descriptorOf, referenceRepos, snapshotIds, treeFacts } from './referenceFixture.js';

/**
 * Format v1 interop, reference → ours: repositories written by the reference JVS
 * (test/fixtures/interop/) are read, verified, restored and extended by us.
 */

const PLAIN = {
  v1: '1796210833804-a027f67c',
  v2: '1796210833852-373a79b1',
  v3: '1796210833899-cf58666a',
  feat: '1796210834023-c4cc7102',
};
const COMPRESSED = { fast: '1796210834199-9d88ea95', max: '1796210834230-db498619', plain: '1796210834278-963afaf6' };

describe('checksums and record hashes of the reference, recomputed byte for byte', () => {
  it('every descriptor_checksum: canonical JSON with "descriptor_checksum":"" and "integrity_state":"" (compression included)', () => {
    const r = referenceRepos();
    let n = 0;
    for (const repo of [r.plain, r.compressed]) {
      for (const id of snapshotIds(repo)) {
        const d = descriptorOf(repo, id);
        expect(descriptorChecksum(d), id).toBe(d.descriptor_checksum);
        expect(checksumRule(d)).toBe('v1');
        n++;
      }
    }
    expect(n).toBe(7);
    // The hashed text itself, for one descriptor with a compression field.
    const d = descriptorOf(r.compressed, COMPRESSED.max);
    expect(canonicalJson({ ...d, descriptor_checksum: '', integrity_state: '' })).toContain('"compression":{"level":9,"type":"gzip"},"created_at"');
  });

  it('every audit record_hash: canonical JSON with "record_hash":"" present, chained by prev_hash', () => {
    const r = referenceRepos();
    let n = 0;
    for (const repo of [r.plain, r.compressed]) {
      const text = fs.readFileSync(path.join(repo, '.jvs/audit/audit.jsonl'), 'utf8');
      const legacy: number[] = [];
      expect(checkAuditChain(text, legacy)).toEqual([]);
      expect(legacy).toEqual([]);
      for (const line of text.trim().split('\n')) {
        const rec = JSON.parse(line);
        expect(auditRecordHash(rec)).toBe(rec.record_hash);
        n++;
      }
    }
    expect(n).toBe(8);
  });
});

describe('our commands on the reference repositories find nothing wrong', () => {
  it.each(['plain', 'compressed'] as const)('%s: verify --all, doctor --strict, info, history', (name) => {
    const r = referenceRepos();
    const main = path.join(r[name], 'main');
    const v = jvs(['verify', '--all', '--json'], { cwd: main });
    expect(v.code, v.stdout).toBe(0);
    const doc = v.json();
    expect(doc.tamper_detected).toBe(false);
    expect(doc.audit_chain_valid).toBe(true);
    // The same snapshots the reference verified, each with checksum and payload valid.
    const ref = expectedJson<Array<{ snapshot_id: string; checksum_valid: boolean }>>(r, `${name}.verify.json`);
    expect(doc.results.map((x: any) => x.snapshot_id).sort()).toEqual(ref.map((x) => x.snapshot_id).sort());
    for (const x of doc.results) expect(x, x.snapshot_id).toMatchObject({ checksum_valid: true, payload_hash_valid: true, ready_valid: true, severity: 'ok' });
    expect(doc.results.every((x: any) => !x.warnings)).toBe(true);

    const doctor = jvs(['doctor', '--strict', '--json'], { cwd: main });
    expect(doctor.code, doctor.stdout).toBe(0);
    expect(doctor.json().findings).toEqual([]);
    expect(jvsOk(['doctor', '--strict'], { cwd: main }).stdout).toContain('Repository is healthy.');

    const info = jvsOk(['info', '--json'], { cwd: main }).json();
    expect(info).toMatchObject({ format_version: 1, total_snapshots: snapshotIds(r[name]).length, total_worktrees: name === 'plain' ? 2 : 1 });

    // Every snapshot the reference's history listed, with the reference's own fields.
    const hist = jvsOk(['history', '--all', '--json'], { cwd: main }).json();
    const ours = new Map(hist.snapshots.map((e: any) => [e.snapshot_id, e]));
    for (const e of expectedJson<any[]>(r, `${name}.history.json`)) {
      const mine: any = ours.get(e.snapshot_id);
      expect(mine, e.snapshot_id).toBeTruthy();
      expect(mine.note).toBe(e.note);
      expect(mine.tags).toEqual(e.tags);
      expect(mine.created_at).toBe(e.created_at);
    }
  });
});

/** Restore in `main` by each kind of ref and compare with what the reference stored. */
describe('restore of every reference snapshot gives back its exact tree', () => {
  it('plain: by id, tag and HEAD — bytes, modes, symlinks, empty folders, no hard links made, no .READY', () => {
    const r = referenceRepos();
    const main = path.join(r.plain, 'main');
    const snapDir = (id: string) => path.join(r.plain, '.jvs/snapshots', id);
    for (const [ref, id] of [[PLAIN.v2, PLAIN.v2], ['v3', PLAIN.v3], ['base', PLAIN.v1], [PLAIN.feat, PLAIN.feat], ['HEAD', PLAIN.v3]] as const) {
      const out = jvs(['restore', ref, '--json'], { cwd: main });
      expect(out.code, `${ref}: ${out.stdout}${out.stderr}`).toBe(0);
      expect(out.json().snapshot_id).toBe(id);
      const got = treeFacts(main);
      expect(got.entries, ref).toEqual(treeFacts(snapDir(id)).entries);
      // The reference stored the user's h1/h2 pair as two files: so do we restore it.
      expect(got.links).toEqual([]);
      expect(fs.existsSync(path.join(main, '.READY'))).toBe(false);
      if (id === PLAIN.v1) expect(got.entries['empty/']).toBe('dir 755');
    }
    expect(treeFacts(main).entries['src/uplink']).toBe('symlink ../a.txt');
    expect(treeFacts(main).entries['run.sh']).toMatch(/^file 755 /);
    expect(treeFacts(main).entries['assets/tex/deep/leaf.txt']).toMatch(/^file 600 /);
    expect(Object.keys(treeFacts(main).entries)).toContain('文件-ñ-é.txt');
    expect(jvsOk(['verify', '--all', '--json'], { cwd: main }).json().tamper_detected).toBe(false);
  });

  it('compressed: decompressed under real names with the recorded modes, never a .gz left behind', () => {
    const r = referenceRepos();
    const main = path.join(r.compressed, 'main');
    const plainTree = treeFacts(path.join(r.compressed, '.jvs/snapshots', COMPRESSED.plain)).entries;
    // The fast snapshot's files, decompressed by hand, with the modes of the later plain snapshot
    // (the reference's payload root hash proves these are the recorded ones).
    const fastDir = path.join(r.compressed, '.jvs/snapshots', COMPRESSED.fast);
    const fastText = zlib.gunzipSync(fs.readFileSync(path.join(fastDir, 't.txt.gz')));
    for (const [ref, id] of [['fast', COMPRESSED.fast], [COMPRESSED.max, COMPRESSED.max], ['HEAD', COMPRESSED.plain]] as const) {
      const out = jvs(['restore', ref, '--json'], { cwd: main });
      expect(out.code, `${ref}: ${out.stdout}${out.stderr}`).toBe(0);
      expect(out.json().snapshot_id).toBe(id);
      const got = treeFacts(main).entries;
      expect(Object.keys(got).filter((k) => k.endsWith('.gz'))).toEqual([]);
      expect(Object.keys(got).sort()).toEqual(Object.keys(plainTree).sort());
      for (const k of Object.keys(plainTree)) expect(got[k]!.split(' ').slice(0, 2), `${ref} ${k}`).toEqual(plainTree[k]!.split(' ').slice(0, 2));
      if (id === COMPRESSED.fast) expect(fs.readFileSync(path.join(main, 't.txt'))).toEqual(fastText);
      else expect(got).toEqual(plainTree);
      expect(fs.existsSync(path.join(main, '.READY'))).toBe(false);
      expect(fs.existsSync(path.join(main, '.READY.gz'))).toBe(false);
    }
    expect(treeFacts(main).entries['d/x.txt']).toMatch(/^file 755 /);
    const st = jvsOk(['status', '--json'], { cwd: main }).json();
    expect(st.clean).toBe(true);
  });

  it("a user's own x.gz in an uncompressed snapshot is restored as x.gz, never decompressed", () => {
    const r = referenceRepos();
    const main = path.join(r.plain, 'main');
    jvsOk(['restore', 'HEAD'], { cwd: main });
    const gz = zlib.gzipSync(Buffer.from('inner\n'));
    fs.writeFileSync(path.join(main, 'data.gz'), gz);
    const id = jvsOk(['snapshot', 'with a gz', '--json'], { cwd: main }).json().snapshot_id;
    fs.rmSync(path.join(main, 'data.gz'));
    jvsOk(['restore', id], { cwd: main });
    expect(fs.readFileSync(path.join(main, 'data.gz'))).toEqual(gz);
    expect(fs.existsSync(path.join(main, 'data'))).toBe(false);
  });
});

describe('forks of reference snapshots, and snapshots we take inside the reference repositories', () => {
  it('plain: fork by tag matches the snapshot; snapshots in main (after restore HEAD) and in the fork verify', () => {
    const r = referenceRepos();
    const main = path.join(r.plain, 'main');
    const fork = jvsOk(['worktree', 'fork', 'v2', 'mine', '--json'], { cwd: main }).json();
    const forkDir = path.join(r.plain, 'worktrees', 'mine');
    expect(fork.snapshot_id).toBe(PLAIN.v2);
    expect(treeFacts(forkDir).entries).toEqual(treeFacts(path.join(r.plain, '.jvs/snapshots', PLAIN.v2)).entries);
    expect(fs.existsSync(path.join(forkDir, '.READY'))).toBe(false);

    // main holds the reference's .READY copy and is detached at v1.
    expect(fs.existsSync(path.join(main, '.READY'))).toBe(true);
    jvsOk(['restore', 'HEAD'], { cwd: main });
    fs.writeFileSync(path.join(main, 'ours.txt'), 'written by us\n');
    const a = jvsOk(['snapshot', 'ours in main', '--json'], { cwd: main }).json();
    expect(a.parent_id).toBe(PLAIN.v3);
    fs.writeFileSync(path.join(forkDir, 'fork.txt'), 'fork\n');
    const b = jvsOk(['snapshot', 'ours in the fork', '--json'], { cwd: forkDir }).json();
    expect(b.parent_id).toBe(PLAIN.v2);
    // The reference's own feature worktree (holding its .READY copy) snapshots too.
    const feature = path.join(r.plain, 'worktrees', 'feature');
    expect(fs.existsSync(path.join(feature, '.READY'))).toBe(true);
    const c = jvsOk(['snapshot', 'ours in feature', '--json'], { cwd: feature }).json();
    expect(fs.existsSync(path.join(r.plain, '.jvs/snapshots', c.snapshot_id, 'feature.txt'))).toBe(true);

    const v = jvs(['verify', '--all', '--json'], { cwd: main });
    expect(v.code, v.stdout).toBe(0);
    for (const id of [a.snapshot_id, b.snapshot_id, c.snapshot_id]) {
      const d = descriptorOf(r.plain, id);
      expect(checksumRule(d)).toBe('v1');
    }
    // Our audit records extend the reference's chain by the same rule.
    const text = fs.readFileSync(path.join(r.plain, '.jvs/audit/audit.jsonl'), 'utf8');
    const legacy: number[] = [];
    expect(checkAuditChain(text, legacy)).toEqual([]);
    expect(legacy).toEqual([]);
    expect(jvs(['doctor', '--strict', '--json'], { cwd: main }).json().findings).toEqual([]);
    // The reference's fork, snapshotted by us and holding its .READY copy, has no unsaved work.
    jvsOk(['worktree', 'remove', 'feature'], { cwd: main });
  });

  it('compressed: fork of a compressed snapshot is decompressed, and snapshots after it verify', () => {
    const r = referenceRepos();
    const main = path.join(r.compressed, 'main');
    jvsOk(['worktree', 'fork', 'max', 'side'], { cwd: main });
    const side = path.join(r.compressed, 'worktrees', 'side');
    expect(treeFacts(side).entries).toEqual(treeFacts(path.join(r.compressed, '.jvs/snapshots', COMPRESSED.plain)).entries);
    fs.writeFileSync(path.join(side, 'new.txt'), 'n\n');
    jvsOk(['snapshot', 'after a compressed base'], { cwd: side });
    jvsOk(['restore', 'fast'], { cwd: main });
    jvsOk(['restore', 'HEAD'], { cwd: main });
    fs.writeFileSync(path.join(main, 't.txt'), 'changed\n');
    jvsOk(['snapshot', 'ours'], { cwd: main });
    const v = jvs(['verify', '--all', '--json'], { cwd: main });
    expect(v.code, v.stdout).toBe(0);
    expect(jvs(['doctor', '--strict', '--json'], { cwd: main }).json().findings).toEqual([]);
  });
});

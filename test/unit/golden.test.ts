import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson, formatTimestamp } from '../../src/format/canonicalJson.js';
import { auditRecordHash, checkAuditChain, legacyAuditRecordHash, serializeAuditRecord, type AuditRecord } from '../../src/format/audit.js';
import { checksumRule, descriptorChecksum, legacyDescriptorChecksum, type Descriptor } from '../../src/format/descriptor.js';
import { createHash } from 'node:crypto';
import { payloadRootHash, type HashedEntry } from '../../src/format/payloadHash.js';
import { packEntries, rootHashOf } from '../../src/fsutil/rootHash.js';
import { native } from '../../src/native/native.js';
import { hashPayloadTree } from '../../src/verify/hashPayload.js';
import { itWith } from '../helpers/prereq.js';
import { tmpDir } from '../helpers/tmp.js';

// Vectors printed by scripts/golden (Go's encoding/json, as the reference uses it).
const FULL_NOTE = 'fix <html> & "quotes"\n\u2028 naïve 日本 😀 \u0001\t';
// The hashed text keeps "descriptor_checksum":"" and "integrity_state":"" (the
// reference's struct has no omitempty on them), and "record_hash":"" for audit records.
const FULL_CANON =
  '{"created_at":"2026-02-28T14:03:12.5Z","descriptor_checksum":"","engine":"copy","integrity_state":"","note":"fix \\u003chtml\\u003e \\u0026 \\"quotes\\"\\n\\u2028 naïve 日本 😀 \\u0001\\t","parent_id":"1708300700000-00ff00ff","payload_root_hash":"abababababababababababababababababababababababababababababababab","snapshot_id":"1708300800000-a3f7c1b2","tags":["v1.0","release"],"worktree_name":"main"}';
const FULL_SUM = 'f2dd144b18a6fe48befdf1d9e98f8da3acd1ea82f43235278cca2fe89d01e64c';
const BARE_CANON =
  '{"created_at":"2026-02-28T14:03:12Z","descriptor_checksum":"","engine":"reflink-copy","integrity_state":"","payload_root_hash":"0000000000000000000000000000000000000000000000000000000000000000","snapshot_id":"1708300800000-a3f7c1b2","worktree_name":"main"}';
const BARE_SUM = '39a00a2b4b8a9b8b0e42c7379fc02e5cf611197dd884e775579857f56fc8b397';
const GZIP_SUM = 'a2cd4c3f990a1842ea3d6fc2df818a24b0afdc5b4376effa18533ab3708d027f';
const AUDIT1_CANON =
  '{"details":{"engine":"copy","note":"a \\u003cb\\u003e"},"event_type":"snapshot_create","prev_hash":"","record_hash":"","snapshot_id":"1708300800000-a3f7c1b2","timestamp":"2026-02-28T14:03:12.12Z","worktree_name":"main"}';
const AUDIT1_SUM = '8238de84b3a69813d2edd52a69c35a7df5df3da6923ea95ac63b8aa74db57c04';
const AUDIT2_SUM = 'd6d593830f4653212fc2056790a034ce9b348ba96a6e597dfa2c98834f394dac';
const TREE_HASH = '6546e952a9980151ba454d384747a14e4fb65387332fa8779e4b350d1462551a';

const full: Descriptor = {
  snapshot_id: '1708300800000-a3f7c1b2',
  parent_id: '1708300700000-00ff00ff',
  worktree_name: 'main',
  created_at: '2026-02-28T14:03:12.5Z',
  note: FULL_NOTE,
  tags: ['v1.0', 'release'],
  engine: 'copy',
  payload_root_hash: 'ab'.repeat(32),
  descriptor_checksum: 'ignored',
  integrity_state: 'verified',
};

describe('canonical JSON (byte-exact with Go encoding/json)', () => {
  it('escapes <>& U+2028 and control characters as Go does and sorts keys', () => {
    expect(canonicalJson({ ...full, descriptor_checksum: '', integrity_state: '' })).toBe(FULL_CANON);
  });

  it('omits empty optional fields instead of writing null', () => {
    const bare = { snapshot_id: '1708300800000-a3f7c1b2', parent_id: undefined, worktree_name: 'main', created_at: '2026-02-28T14:03:12Z', note: undefined, engine: 'reflink-copy', payload_root_hash: '0'.repeat(64), descriptor_checksum: '', integrity_state: '' };
    expect(canonicalJson(bare)).toBe(BARE_CANON);
  });

  it('orders keys by code point, astral characters after U+FB01', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 2.5], '😀': 'x', 'ﬁ': 'y', Z: 'z' })).toBe('{"Z":"z","a":[true,null,2.5],"b":1,"ﬁ":"y","😀":"x"}');
  });

  it('prints lone surrogates as U+FFFD like Go does for invalid UTF-8', () => {
    expect(canonicalJson('a\ud800b')).toBe('"a\\ufffdb"');
  });

  it('keeps a non-UTF-8 name byte (U+DC80..U+DCFF, nameBytes.ts) as its own escape, so parsing gives the same name back', () => {
    const name = 'caf\udce9.txt';
    expect(canonicalJson([name])).toBe('["caf\\udce9.txt"]');
    expect(JSON.parse(canonicalJson([name]))).toEqual([name]);
    expect(canonicalJson(JSON.parse(canonicalJson([name])))).toBe(canonicalJson([name]));
    expect(canonicalJson('a\udc7fb')).toBe('"a\\ufffdb"'); // below the byte range: not a name byte
  });

  it('formats timestamps as Go does: fraction trimmed, dropped when zero', () => {
    expect(formatTimestamp(new Date('2026-02-28T14:03:12.500Z'))).toBe('2026-02-28T14:03:12.5Z');
    expect(formatTimestamp(new Date('2026-02-28T14:03:12.120Z'))).toBe('2026-02-28T14:03:12.12Z');
    expect(formatTimestamp(new Date('2026-02-28T14:03:12.000Z'))).toBe('2026-02-28T14:03:12Z');
  });
});

describe('descriptor checksum', () => {
  it('matches the golden vector for a descriptor with every field', () => {
    expect(descriptorChecksum(full)).toBe(FULL_SUM);
  });

  it('matches the golden vector when optional fields are empty (omitted, not null)', () => {
    const bare: Descriptor = { snapshot_id: '1708300800000-a3f7c1b2', worktree_name: 'main', created_at: '2026-02-28T14:03:12Z', note: '', tags: [], engine: 'reflink-copy', payload_root_hash: '0'.repeat(64), descriptor_checksum: 'x', integrity_state: 'unverified' };
    expect(descriptorChecksum(bare)).toBe(BARE_SUM);
  });

  it('hashes descriptor_checksum and integrity_state as empty strings and covers every other field', () => {
    const a = descriptorChecksum(full);
    expect(a).toBe(createHash('sha256').update(FULL_CANON).digest('hex'));
    expect(descriptorChecksum({ ...full, integrity_state: 'corrupt', descriptor_checksum: 'zz' })).toBe(a);
    expect(descriptorChecksum({ ...full, note: FULL_NOTE + ' ' })).not.toBe(a);
    expect(descriptorChecksum({ ...full, partial_paths: ['Assets'] })).not.toBe(a);
  });

  it('covers the compression field the reference writes for --compress snapshots', () => {
    const bare: Descriptor = { snapshot_id: '1708300800000-a3f7c1b2', worktree_name: 'main', created_at: '2026-02-28T14:03:12Z', engine: 'reflink-copy', payload_root_hash: '0'.repeat(64), descriptor_checksum: '', integrity_state: 'verified', compression: { type: 'gzip', level: 9 } };
    expect(descriptorChecksum(bare)).toBe(GZIP_SUM);
  });

  it('recognises a checksum made by the legacy rule (both keys dropped) as legacy, never as v1', () => {
    const legacy = { ...full, descriptor_checksum: legacyDescriptorChecksum(full) };
    expect(legacy.descriptor_checksum).not.toBe(descriptorChecksum(full));
    expect(checksumRule(legacy)).toBe('legacy');
    expect(checksumRule({ ...full, descriptor_checksum: descriptorChecksum(full) })).toBe('v1');
    expect(checksumRule({ ...legacy, note: 'edited' })).toBeUndefined();
  });
});

describe('audit record hash', () => {
  const first: AuditRecord = { timestamp: '2026-02-28T14:03:12.12Z', event_type: 'snapshot_create', worktree_name: 'main', snapshot_id: '1708300800000-a3f7c1b2', details: { engine: 'copy', note: 'a <b>' }, prev_hash: '', record_hash: '' };
  it('matches the golden vectors: canonical JSON with "record_hash":"" present', () => {
    expect(canonicalJson({ ...first } as never)).toBe(AUDIT1_CANON);
    expect(auditRecordHash(first)).toBe(AUDIT1_SUM);
    expect(auditRecordHash({ timestamp: '2026-02-28T14:03:12Z', event_type: 'gc_run', prev_hash: AUDIT1_SUM, record_hash: '' })).toBe(AUDIT2_SUM);
  });

  it('accepts lines hashed by the legacy rule, names them, and still rejects an edited line', () => {
    const a = { ...first, record_hash: legacyAuditRecordHash(first) };
    const b: AuditRecord = { timestamp: '2026-02-28T14:03:12Z', event_type: 'gc_run', prev_hash: a.record_hash, record_hash: '' };
    b.record_hash = auditRecordHash(b);
    const legacy: number[] = [];
    expect(checkAuditChain(serializeAuditRecord(a) + serializeAuditRecord(b), legacy)).toEqual([]);
    expect(legacy).toEqual([1]);
    const edited = serializeAuditRecord({ ...a, event_type: 'restore' }) + serializeAuditRecord(b);
    expect(checkAuditChain(edited).map((p) => p.line)).toEqual([1]);
  });
});

describe('payload root hash', () => {
  it('matches the golden vector for a tree with dirs, modes, an empty file, a symlink and a .READY marker', () => {
    const root = tmpDir();
    fs.mkdirSync(path.join(root, 'd/e'), { recursive: true });
    fs.writeFileSync(path.join(root, 'a.txt'), 'hello\n');
    fs.chmodSync(path.join(root, 'a.txt'), 0o640);
    fs.writeFileSync(path.join(root, 'd/empty'), '');
    fs.writeFileSync(path.join(root, 'd/e/big'), 'x'.repeat(1000));
    fs.chmodSync(path.join(root, 'd/e/big'), 0o755);
    fs.symlinkSync('../a.txt', path.join(root, 'd/link'));
    fs.chmodSync(path.join(root, 'd'), 0o750);
    fs.chmodSync(path.join(root, 'd/e'), 0o755);
    fs.chmodSync(path.join(root, 'd/empty'), 0o644);
    fs.writeFileSync(path.join(root, '.READY'), 'ready\n');
    expect(hashPayloadTree(root).hash).toBe(TREE_HASH);
  });

  // The same tree as an entry list, in walk order: the JavaScript definition, the
  // dispatcher and the addon's rootHash (native/jvs_roothash.c) each give the vector.
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const treeEntries: HashedEntry[] = [
    { rel: 'a.txt', type: 'file', mode: 0o100640, size: 6, contentHash: sha('hello\n') },
    { rel: 'd', type: 'dir', mode: 0o40750, size: 4096 },
    { rel: 'd/e', type: 'dir', mode: 0o40755, size: 4096 },
    { rel: 'd/e/big', type: 'file', mode: 0o100755, size: 1000, contentHash: sha('x'.repeat(1000)) },
    { rel: 'd/empty', type: 'file', mode: 0o100644, size: 0, contentHash: sha('') },
    { rel: 'd/link', type: 'symlink', mode: 0o120777, size: 8, target: '../a.txt' },
  ];
  it('matches the golden vector from an entry list, through payloadRootHash and rootHashOf', () => {
    expect(payloadRootHash(treeEntries)).toBe(TREE_HASH);
    expect(rootHashOf(treeEntries)).toBe(TREE_HASH);
  });

  itWith('native', typeof native()?.rootHash === 'function' ? undefined : 'the jvs_native addon with rootHash is not built (npm run build:native)', 'matches the golden vector through the addon\'s rootHash', () => {
    const p = packEntries(treeEntries)!;
    expect(native()!.rootHash(p.fields, p.types, p.modes, p.sizes)).toBe(TREE_HASH);
  });

  it('changes when one mode bit changes', () => {
    const root = tmpDir();
    fs.writeFileSync(path.join(root, 'f'), 'x');
    fs.chmodSync(path.join(root, 'f'), 0o644);
    const a = hashPayloadTree(root).hash;
    fs.chmodSync(path.join(root, 'f'), 0o645);
    expect(hashPayloadTree(root).hash).not.toBe(a);
  });
});

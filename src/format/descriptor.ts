import { JvsError } from '../errors.js';
import { canonicalJson, isTimestamp, type JsonValue } from './canonicalJson.js';
import { HASH_RE, sha256Hex } from './hash.js';
import { isSnapshotId } from './snapshotId.js';
import { isCleanName } from './controlNames.js';
import { parseJsonObject } from './parseJson.js';

export type EngineName = 'juicefs-clone' | 'reflink-copy' | 'copy';
export type IntegrityState = 'verified' | 'unverified' | 'corrupt';

export interface Descriptor {
  snapshot_id: string;
  parent_id?: string;
  worktree_name: string;
  created_at: string;
  note?: string;
  tags?: string[];
  engine: string;
  payload_root_hash: string;
  descriptor_checksum: string;
  integrity_state: IntegrityState;
  partial_paths?: string[];
  /** Fields written by another implementation are kept so the checksum still holds. */
  [extra: string]: JsonValue | undefined;
}

/** Drop empty optional fields so they are absent, as the reference's omitempty does. */
export function normalizeDescriptor(d: Descriptor): Descriptor {
  const out: Descriptor = { ...d };
  for (const k of ['parent_id', 'note'] as const) if (!out[k]) delete out[k];
  for (const k of ['tags', 'partial_paths'] as const) if (!out[k] || out[k]!.length === 0) delete out[k];
  return out;
}

/**
 * `descriptor_checksum` = SHA-256 of the canonical JSON of the descriptor with
 * `"descriptor_checksum":""` and `"integrity_state":""` present. The reference's struct
 * has no omitempty on these two, so both keys stay in the hashed text as empty strings.
 * Every other field is covered, including fields added later (`compression`, or any
 * field another implementation wrote): the covered set is derived, never listed by hand.
 */
export function descriptorChecksum(d: Descriptor): string {
  return sha256Hex(canonicalJson({ ...normalizeDescriptor(d), descriptor_checksum: '', integrity_state: '' } as JsonValue));
}

/**
 * The rule JVS used before it was corrected (docs/integrity.md, "Legacy checksums"):
 * both keys dropped from the hashed JSON. Repositories written then still carry such
 * checksums; verify accepts them with a warning so they are never called corrupt, and
 * `jvs doctor --strict --repair-runtime` rewrites them by the reference's rule.
 */
export function legacyDescriptorChecksum(d: Descriptor): string {
  const { descriptor_checksum: _c, integrity_state: _i, ...covered } = normalizeDescriptor(d);
  return sha256Hex(canonicalJson(covered as JsonValue));
}

export type ChecksumRule = 'v1' | 'legacy';

/** Which rule the stored checksum was computed by, or undefined when it matches neither. */
export function checksumRule(d: Descriptor): ChecksumRule | undefined {
  if (descriptorChecksum(d) === d.descriptor_checksum) return 'v1';
  if (legacyDescriptorChecksum(d) === d.descriptor_checksum) return 'legacy';
  return undefined;
}

/** Bytes written to `.jvs/descriptors/<id>.json`: canonical JSON plus a newline. */
export function serializeDescriptor(d: Descriptor): string {
  return canonicalJson(normalizeDescriptor(d) as JsonValue) + '\n';
}

function corrupt(id: string, why: string): JvsError {
  return new JvsError('E_DESCRIPTOR_CORRUPT', `descriptor of snapshot ${id} is corrupt: ${why}`, {
    hint: `run \`jvs verify ${id}\` for details and \`jvs doctor --strict\` to check the repository`,
  });
}

const isStringArray = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Parse and structurally validate a descriptor. The checksum is checked by verify. */
export function parseDescriptor(text: string, expectedId: string): Descriptor {
  const d = parseJsonObject(text, (why) => corrupt(expectedId, why));
  if (d.snapshot_id !== expectedId || !isSnapshotId(expectedId)) throw corrupt(expectedId, 'snapshot_id does not match its file name');
  if (d.parent_id !== undefined && (typeof d.parent_id !== 'string' || !isSnapshotId(d.parent_id))) throw corrupt(expectedId, 'parent_id is not a snapshot id');
  if (typeof d.worktree_name !== 'string' || d.worktree_name === '') throw corrupt(expectedId, 'worktree_name missing');
  if (!isCleanName(d.worktree_name)) throw corrupt(expectedId, `worktree_name ${JSON.stringify(d.worktree_name)} is not a valid worktree name`);
  if (!isTimestamp(d.created_at)) throw corrupt(expectedId, 'created_at is not an RFC 3339 timestamp');
  if (d.note !== undefined && typeof d.note !== 'string') throw corrupt(expectedId, 'note is not a string');
  if (d.tags !== undefined && !isStringArray(d.tags)) throw corrupt(expectedId, 'tags is not a list of strings');
  if (d.partial_paths !== undefined && !isStringArray(d.partial_paths)) throw corrupt(expectedId, 'partial_paths is not a list of strings');
  if (typeof d.engine !== 'string') throw corrupt(expectedId, 'engine missing');
  if (typeof d.payload_root_hash !== 'string' || !HASH_RE.test(d.payload_root_hash)) throw corrupt(expectedId, 'payload_root_hash is not a SHA-256 hex digest');
  if (typeof d.descriptor_checksum !== 'string' || !HASH_RE.test(d.descriptor_checksum)) throw corrupt(expectedId, 'descriptor_checksum is not a SHA-256 hex digest');
  if (!['verified', 'unverified', 'corrupt'].includes(d.integrity_state as string)) throw corrupt(expectedId, 'integrity_state is not verified|unverified|corrupt');
  return d as Descriptor;
}

export interface ReadyMarker {
  snapshot_id: string;
  completed_at: string;
  payload_root_hash: string;
  engine: string;
  descriptor_checksum: string;
}

export function serializeReady(r: ReadyMarker): string {
  return canonicalJson(r as unknown as JsonValue) + '\n';
}

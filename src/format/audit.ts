import { canonicalJson, type JsonValue } from './canonicalJson.js';
import { sha256Hex } from './hash.js';

export type AuditEventType =
  | 'snapshot_create' | 'snapshot_delete' | 'restore'
  | 'worktree_create' | 'worktree_rename' | 'worktree_remove'
  | 'gc_plan' | 'gc_run' | 'gc_pin' | 'gc_unpin' | 'repo_init' | 'doctor_repair' | 'config_set';

export interface AuditRecord {
  timestamp: string;
  event_type: AuditEventType | string;
  snapshot_id?: string;
  worktree_name?: string;
  details?: { [k: string]: JsonValue | undefined };
  prev_hash: string;
  record_hash: string;
}

function hashedFields(r: Omit<AuditRecord, 'record_hash'> & { record_hash?: string }): Record<string, JsonValue | undefined> {
  const { record_hash: _ignored, ...rest } = r;
  const clean: Record<string, JsonValue | undefined> = { ...rest };
  if (!clean.snapshot_id) delete clean.snapshot_id;
  if (!clean.worktree_name) delete clean.worktree_name;
  if (!clean.details || Object.keys(clean.details as object).length === 0) delete clean.details;
  return clean;
}

/**
 * record_hash = SHA-256 of the canonical JSON of the record with `"record_hash":""`
 * present (the reference's struct keeps the key when hashing, as for descriptors).
 */
export function auditRecordHash(r: Omit<AuditRecord, 'record_hash'> & { record_hash?: string }): string {
  return sha256Hex(canonicalJson({ ...hashedFields(r), record_hash: '' }));
}

/** The rule JVS used before it was corrected: record_hash left out of the hashed JSON. */
export function legacyAuditRecordHash(r: Omit<AuditRecord, 'record_hash'> & { record_hash?: string }): string {
  return sha256Hex(canonicalJson(hashedFields(r)));
}

export function serializeAuditRecord(r: AuditRecord): string {
  return canonicalJson(r as unknown as JsonValue) + '\n';
}

export interface ChainProblem {
  line: number;
  problem: string;
}

/**
 * Check every line's hash and its link to the previous line. Lines hashed by the
 * legacy rule are accepted and their numbers collected in `legacyLines` (when given),
 * so a caller can warn without calling an old repository tampered.
 */
export function checkAuditChain(text: string, legacyLines?: number[]): ChainProblem[] {
  const problems: ChainProblem[] = [];
  let prev = '';
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    let r: AuditRecord;
    try {
      r = JSON.parse(line) as AuditRecord;
    } catch {
      problems.push({ line: i + 1, problem: 'not valid JSON' });
      prev = '';
      return;
    }
    if (r.prev_hash !== prev) problems.push({ line: i + 1, problem: 'prev_hash does not match the previous record' });
    if (auditRecordHash(r) !== r.record_hash) {
      if (legacyAuditRecordHash(r) === r.record_hash) legacyLines?.push(i + 1);
      else problems.push({ line: i + 1, problem: 'record_hash does not match the record' });
    }
    prev = r.record_hash;
  });
  return problems;
}

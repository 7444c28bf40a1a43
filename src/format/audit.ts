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

/** record_hash = SHA-256 of the canonical JSON of the record without record_hash. */
export function auditRecordHash(r: Omit<AuditRecord, 'record_hash'> & { record_hash?: string }): string {
  const { record_hash: _ignored, ...rest } = r;
  const clean: Record<string, JsonValue | undefined> = { ...rest };
  if (!clean.snapshot_id) delete clean.snapshot_id;
  if (!clean.worktree_name) delete clean.worktree_name;
  if (!clean.details || Object.keys(clean.details as object).length === 0) delete clean.details;
  return sha256Hex(canonicalJson(clean));
}

export function serializeAuditRecord(r: AuditRecord): string {
  return canonicalJson(r as unknown as JsonValue) + '\n';
}

export interface ChainProblem {
  line: number;
  problem: string;
}

/** Check every line's hash and its link to the previous line. */
export function checkAuditChain(text: string): ChainProblem[] {
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
    if (auditRecordHash(r) !== r.record_hash) problems.push({ line: i + 1, problem: 'record_hash does not match the record' });
    prev = r.record_hash;
  });
  return problems;
}

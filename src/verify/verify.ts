import fs from 'node:fs';
import { JvsError, type ErrorClass } from '../errors.js';
import { checkAuditChain } from '../format/audit.js';
import { descriptorChecksum, type Descriptor } from '../format/descriptor.js';
import type { Layout } from '../repo/layout.js';
import { resolveRef } from '../repo/refs.js';
import { loadDescriptors } from '../repo/snapshots.js';
import { readWorktreeConfig } from '../repo/worktreeConfig.js';
import type { Reporter } from '../progress.js';
import { hashPayloadTree } from './hashPayload.js';

export type Severity = 'ok' | 'error' | 'critical';

export interface SnapshotVerification {
  snapshot_id: string;
  checksum_valid: boolean;
  payload_hash_valid: boolean;
  ready_valid: boolean;
  lineage_valid: boolean;
  tamper_detected: boolean;
  severity: Severity;
  error_class?: ErrorClass;
  problems: string[];
}

export interface VerifyReport {
  results: SnapshotVerification[];
  audit_chain_valid?: boolean;
  audit_problems?: Array<{ line: number; problem: string }>;
  tamper_detected: boolean;
  severity: Severity;
  checked: number;
}

function readReady(layout: Layout, id: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(fs.readFileSync(layout.readyFile(id), 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export function verifyDescriptor(layout: Layout, d: Descriptor, known: Set<string>, reporter?: Reporter): SnapshotVerification {
  const problems: string[] = [];
  let errorClass: ErrorClass | undefined;
  const checksumValid = descriptorChecksum(d) === d.descriptor_checksum;
  if (!checksumValid) {
    problems.push('descriptor checksum does not match its fields');
    errorClass = 'E_DESCRIPTOR_CORRUPT';
  }
  let payloadValid = false;
  if (!fs.existsSync(layout.snapshotDir(d.snapshot_id))) {
    problems.push('snapshot payload folder is missing');
    errorClass ??= 'E_PAYLOAD_HASH_MISMATCH';
  } else {
    payloadValid = hashPayloadTree(layout.snapshotDir(d.snapshot_id), reporter ? (x, t) => reporter.progress('verify', x, t) : undefined).hash === d.payload_root_hash;
    if (!payloadValid) {
      problems.push('payload root hash does not match the files on disk');
      errorClass ??= 'E_PAYLOAD_HASH_MISMATCH';
    }
  }
  const ready = readReady(layout, d.snapshot_id);
  const readyValid = !!ready && ready.snapshot_id === d.snapshot_id && ready.payload_root_hash === d.payload_root_hash && ready.descriptor_checksum === d.descriptor_checksum;
  if (!readyValid) {
    problems.push(ready ? '.READY marker disagrees with the descriptor' : '.READY marker is missing or unreadable');
    errorClass ??= 'E_DESCRIPTOR_CORRUPT';
  }
  const lineageValid = !d.parent_id || known.has(d.parent_id);
  if (!lineageValid) {
    problems.push(`parent snapshot ${d.parent_id} does not exist`);
    errorClass ??= 'E_LINEAGE_BROKEN';
  }
  const tamper = !checksumValid || !payloadValid || !readyValid;
  return {
    snapshot_id: d.snapshot_id,
    checksum_valid: checksumValid,
    payload_hash_valid: payloadValid,
    ready_valid: readyValid,
    lineage_valid: lineageValid,
    tamper_detected: tamper,
    severity: tamper ? 'critical' : lineageValid ? 'ok' : 'error',
    ...(errorClass ? { error_class: errorClass } : {}),
    problems,
  };
}

export interface VerifyOptions {
  ref?: string;
  all?: boolean;
  worktree?: string;
  reporter?: Reporter;
}

/**
 * Verify one snapshot (a ref, default the worktree's head) or, with `all`, every
 * snapshot plus the audit chain. Read-only: takes no lock and changes nothing.
 */
export function verify(layout: Layout, opts: VerifyOptions): VerifyReport {
  const { descriptors, broken } = loadDescriptors(layout);
  const known = new Set([...descriptors.map((d) => d.snapshot_id), ...broken.map((b) => b.id)]);
  let targets: Descriptor[];
  const results: SnapshotVerification[] = broken.map((b) => ({
    snapshot_id: b.id, checksum_valid: false, payload_hash_valid: false, ready_valid: false, lineage_valid: false,
    tamper_detected: true, severity: 'critical' as const, error_class: b.error.code, problems: [b.error.message],
  }));
  if (opts.all) {
    targets = descriptors;
  } else {
    const wt = opts.worktree ? readWorktreeConfig(layout, opts.worktree) : undefined;
    const ref = opts.ref ?? wt?.head_snapshot_id;
    if (!ref) throw new JvsError('E_NOT_FOUND', 'nothing to verify: no snapshots yet', { hint: 'take one with `jvs snapshot "note"`' });
    targets = [resolveRef(layout, ref, wt, descriptors).descriptor];
    results.length = 0;
  }
  for (const d of targets) results.push(verifyDescriptor(layout, d, known, opts.reporter));
  const report: VerifyReport = { results, tamper_detected: results.some((r) => r.tamper_detected), severity: 'ok', checked: results.length };
  if (opts.all) {
    let text = '';
    try {
      text = fs.readFileSync(layout.auditLog, 'utf8');
    } catch { /* no log yet */ }
    report.audit_problems = checkAuditChain(text);
    report.audit_chain_valid = report.audit_problems.length === 0;
    if (!report.audit_chain_valid) report.tamper_detected = true;
  }
  report.severity = results.some((r) => r.severity === 'critical') || report.audit_chain_valid === false ? 'critical' : results.some((r) => r.severity === 'error') ? 'error' : 'ok';
  return report;
}

/** The error a failed report turns into (class of the first problem found). */
export function verifyFailure(report: VerifyReport): JvsError | undefined {
  const bad = report.results.find((r) => r.severity !== 'ok');
  if (bad) {
    return new JvsError(bad.error_class ?? 'E_PAYLOAD_HASH_MISMATCH', `snapshot ${bad.snapshot_id}: ${bad.problems.join('; ')}`, {
      hint: 'restore from a healthy snapshot or copy; `jvs doctor --strict` lists everything found',
      details: { report: report as unknown as Record<string, unknown> },
    });
  }
  if (report.audit_chain_valid === false) {
    const p = report.audit_problems![0]!;
    return new JvsError('E_AUDIT_CHAIN_BROKEN', `audit log line ${p.line}: ${p.problem}`, {
      hint: 'the audit log was edited or truncated; `jvs doctor --strict` reports it',
      details: { report: report as unknown as Record<string, unknown> },
    });
  }
  return undefined;
}

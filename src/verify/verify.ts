import fs from 'node:fs';
import { JvsError, type ErrorClass } from '../errors.js';
import { checkAuditChain } from '../format/audit.js';
import { checksumRule, type Descriptor } from '../format/descriptor.js';
import type { Layout } from '../repo/layout.js';
import { resolveRef } from '../repo/refs.js';
import { readTombstone } from '../repo/tombstones.js';
import { loadDescriptors } from '../repo/snapshots.js';
import { listWorktreeNames, readWorktreeConfig } from '../repo/worktreeConfig.js';
import type { Reporter } from '../progress.js';
import { hashPayloadTree } from './hashPayload.js';
import { IndexDb } from '../index/indexDb.js';
import { getSnapshotManifest, manifestProblem } from '../index/manifests.js';
import { fsPath } from '../format/nameBytes.js';

/**
 * The index's manifests that cannot be taken as their snapshots' (unclean paths, a
 * root hash other than the descriptor's), by snapshot id. Restore would drop and
 * rebuild such a manifest; verify and `doctor --strict` report it as tampering.
 */
export function indexManifestProblems(layout: Layout, descriptors: readonly Descriptor[]): Map<string, { why: string; errorClass: ErrorClass }> {
  const out = new Map<string, { why: string; errorClass: ErrorClass }>();
  const idx = IndexDb.open(layout);
  if (!idx) return out;
  try {
    for (const d of descriptors) {
      const m = getSnapshotManifest(idx, d.snapshot_id);
      const p = m && manifestProblem(m, d);
      if (p) out.set(d.snapshot_id, p);
    }
  } finally {
    idx.close();
  }
  return out;
}

/**
 * Payload files whose stat is not what their snapshot's manifest recorded at publish
 * (not a regular file, another size or mtime): written to since, e.g. by one `>>`
 * into a file that every snapshot sharing it (hard links) now holds damaged. One lstat
 * per file, no reads: cheap enough for plain `jvs doctor`. Snapshots without a manifest
 * in the index are skipped (`verify` hashes them). At most `limit` per snapshot.
 */
/**
 * Payload mtimes are compared to a millisecond: without the addon a copy's times are set
 * through Node's utimes, whose seconds are a double (the nanoseconds come back rounded),
 * and some filesystems keep only microseconds. A write that keeps the size and puts the
 * mtime back that closely is `--strict`'s to find, as it is at any precision.
 */
function sameMtime(a: bigint, b: bigint): boolean {
  const d = a - b;
  return d < 1_000_000n && d > -1_000_000n;
}

export function changedPayloadFiles(layout: Layout, descriptors: readonly Descriptor[], limit = 20): Array<{ snapshot_id: string; rels: string[]; more: number }> {
  const out: Array<{ snapshot_id: string; rels: string[]; more: number }> = [];
  const idx = IndexDb.open(layout);
  if (!idx) return out;
  try {
    for (const d of descriptors) {
      // A compressed snapshot's manifest names the files it decompresses to, not its `.gz` files.
      if (compressionOf(d)) continue;
      const m = getSnapshotManifest(idx, d.snapshot_id);
      if (!m || manifestProblem(m, d)) continue; // a damaged manifest is --strict's finding
      const root = layout.snapshotDir(d.snapshot_id);
      const rels: string[] = [];
      let more = 0;
      for (const e of m) {
        if (e.type !== 'file') continue;
        let st: fs.BigIntStats | undefined;
        try {
          st = fs.lstatSync(fsPath(`${root}/${e.rel}`), { bigint: true });
        } catch {
          st = undefined;
        }
        if (st && st.isFile() && st.size === BigInt(e.size) && sameMtime(st.mtimeNs, e.mtimeNs)) continue;
        if (rels.length < limit) rels.push(e.rel);
        else more++;
      }
      if (rels.length) out.push({ snapshot_id: d.snapshot_id, rels, more });
    }
  } finally {
    idx.close();
  }
  return out;
}

/** Adds an index manifest problem to a snapshot's verification. */
export function withIndexProblem(v: SnapshotVerification, p: { why: string; errorClass: ErrorClass } | undefined): SnapshotVerification {
  if (!p) return v;
  v.problems.push(`the index's manifest of this snapshot is damaged: ${p.why} (restore rebuilds it from the payload; so does \`jvs doctor --repair-runtime\` when the index is unreadable)`);
  v.error_class ??= p.errorClass;
  v.tamper_detected = true;
  v.severity = 'critical';
  return v;
}
import { compressionOf } from '../format/compression.js';
import { hintRoots, loadCompressedPayload } from './compressedPayload.js';
import { readReadyMarker } from './restorable.js';

export type Severity = 'ok' | 'error' | 'critical';

export interface SnapshotVerification {
  snapshot_id: string;
  checksum_valid: boolean;
  payload_hash_valid: boolean;
  ready_valid: boolean;
  lineage_valid: boolean;
  /** The parent was deleted by gc (its tombstone says so): lineage stays valid, the chain simply starts here. */
  parent_pruned?: { snapshot_id: string; deleted_at: string; plan_id: string };
  tamper_detected: boolean;
  severity: Severity;
  error_class?: ErrorClass;
  problems: string[];
  /** Sound but worth knowing, e.g. a checksum made by the legacy rule (docs/integrity.md). */
  warnings?: string[];
}

export const LEGACY_CHECKSUM_WARNING = 'descriptor checksum uses the legacy rule (before format v1 was fixed); accepted, but the reference JVS reports this snapshot as TAMPERED';

export interface LineageProblem {
  snapshot_id?: string;
  worktree?: string;
  problem: string;
  /** E_LINEAGE_BROKEN unless the worktree config itself is unreadable. */
  error_class: ErrorClass;
}

export interface VerifyReport {
  results: SnapshotVerification[];
  /** Cycles in parent links and worktree heads naming missing snapshots (with --all). */
  lineage_problems?: LineageProblem[];
  audit_chain_valid?: boolean;
  audit_problems?: Array<{ line: number; problem: string }>;
  /** Audit lines whose record_hash follows the legacy rule (accepted, see docs/integrity.md). */
  audit_legacy_lines?: number[];
  tamper_detected: boolean;
  severity: Severity;
  checked: number;
}

function readReady(layout: Layout, d: Descriptor): Record<string, unknown> | undefined {
  try {
    return readReadyMarker(layout, d);
  } catch {
    return undefined;
  }
}

/** Re-hash a snapshot's payload: its files, or for a compressed snapshot the tree they decompress to. */
function payloadMatches(layout: Layout, d: Descriptor, reporter?: Reporter): { ok: boolean; note?: string } {
  const dir = layout.snapshotDir(d.snapshot_id);
  let compressed;
  try {
    compressed = compressionOf(d);
  } catch (e) {
    return { ok: false, note: (e as Error).message };
  }
  if (!compressed) return { ok: hashPayloadTree(dir, reporter ? (x, t) => reporter.progress('verify', x, t) : undefined).hash === d.payload_root_hash };
  try {
    const p = loadCompressedPayload(dir, d, () => hintRoots(layout));
    return p.verified ? { ok: true } : { ok: false, note: 'no assignment of file modes gives the recorded hash (the compressed layout does not keep modes)' };
  } catch (e) {
    return { ok: false, note: (e as Error).message };
  }
}

/**
 * Check one snapshot. `deep` (the default) re-hashes the payload; without it only the
 * cheap checks run (checksum, folder, .READY, parent) and payload_hash_valid reports
 * whether the folder exists — used by `jvs doctor` without `--strict`.
 */
export function verifyDescriptor(layout: Layout, d: Descriptor, known: Set<string>, reporter?: Reporter, deep = true): SnapshotVerification {
  const problems: string[] = [];
  const warnings: string[] = [];
  let errorClass: ErrorClass | undefined;
  const rule = checksumRule(d);
  const checksumValid = rule !== undefined;
  if (rule === 'legacy') warnings.push(LEGACY_CHECKSUM_WARNING);
  if (!checksumValid) {
    problems.push('descriptor checksum does not match its fields');
    errorClass = 'E_DESCRIPTOR_CORRUPT';
  }
  let payloadValid = false;
  if (!fs.existsSync(layout.snapshotDir(d.snapshot_id))) {
    problems.push('snapshot payload folder is missing');
    errorClass ??= 'E_PARTIAL_SNAPSHOT';
  } else {
    const m = deep ? payloadMatches(layout, d, reporter) : { ok: true };
    payloadValid = m.ok;
    if (!payloadValid) {
      problems.push(`payload root hash does not match the files on disk${m.note ? ` (${m.note})` : ''}`);
      errorClass ??= 'E_PAYLOAD_HASH_MISMATCH';
    }
  }
  const ready = readReady(layout, d);
  const readyValid = !!ready && ready.snapshot_id === d.snapshot_id && ready.payload_root_hash === d.payload_root_hash && ready.descriptor_checksum === d.descriptor_checksum;
  if (!readyValid) {
    problems.push(ready ? '.READY marker disagrees with the descriptor' : '.READY marker is missing or unreadable');
    // A missing marker means the snapshot was never completed; a wrong one is damage.
    errorClass ??= ready ? 'E_DESCRIPTOR_CORRUPT' : 'E_PARTIAL_SNAPSHOT';
  }
  const pruned = d.parent_id && !known.has(d.parent_id) ? readTombstone(layout, d.parent_id) : undefined;
  const lineageValid = !d.parent_id || known.has(d.parent_id) || !!pruned;
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
    ...(pruned ? { parent_pruned: { snapshot_id: pruned.snapshot_id, deleted_at: pruned.deleted_at, plan_id: pruned.plan_id } } : {}),
    tamper_detected: tamper,
    severity: tamper ? 'critical' : lineageValid ? 'ok' : 'error',
    ...(errorClass ? { error_class: errorClass } : {}),
    problems,
    ...(warnings.length ? { warnings } : {}),
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
  const results: SnapshotVerification[] = verifyBroken(broken);
  if (opts.all) {
    targets = descriptors;
  } else {
    const wt = opts.worktree ? readWorktreeConfig(layout, opts.worktree) : undefined;
    const ref = opts.ref ?? wt?.head_snapshot_id;
    if (!ref) throw new JvsError('E_NOT_FOUND', 'nothing to verify: no snapshots yet', { hint: 'take one with `jvs snapshot "note"`' });
    const brokenHit = broken.find((b) => b.id === ref);
    results.length = 0;
    if (brokenHit) {
      // A damaged descriptor is not resolvable as a ref, but naming it fully still reports it.
      results.push(...verifyBroken([brokenHit]));
      targets = [];
    } else {
      targets = [resolveRef(layout, ref, wt, descriptors).descriptor];
    }
  }
  const indexProblems = indexManifestProblems(layout, targets);
  // More than one snapshot: one bar over all of them (each snapshot's bytes move it within its share).
  const overall = opts.reporter && targets.length > 1 ? opts.reporter : undefined;
  targets.forEach((d, i) => {
    const reporter: Reporter | undefined = overall ? { progress: (_task: string, x: number, t: number) => overall.progress('verify', i + (t > 0 ? Math.min(x / t, 1) : 1), targets.length, 'snapshots') } : opts.reporter;
    results.push(withIndexProblem(verifyDescriptor(layout, d, known, reporter), indexProblems.get(d.snapshot_id)));
    overall?.progress('verify', i + 1, targets.length, 'snapshots');
  });
  const report: VerifyReport = { results, tamper_detected: results.some((r) => r.tamper_detected), severity: 'ok', checked: results.length };
  if (opts.all) {
    let text = '';
    try {
      text = fs.readFileSync(layout.auditLog, 'utf8');
    } catch { /* no log yet */ }
    report.lineage_problems = checkLineage(layout, descriptors);
    const legacyLines: number[] = [];
    report.audit_problems = checkAuditChain(text, legacyLines);
    if (legacyLines.length) report.audit_legacy_lines = legacyLines;
    report.audit_chain_valid = report.audit_problems.length === 0;
    if (!report.audit_chain_valid) report.tamper_detected = true;
  }
  report.severity = results.some((r) => r.severity === 'critical') || report.audit_chain_valid === false
    ? 'critical'
    : results.some((r) => r.severity === 'error') || report.lineage_problems?.length ? 'error' : 'ok';
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
  const lp = report.lineage_problems?.[0];
  if (lp) {
    return new JvsError(lp.error_class, `${lp.worktree ? `worktree '${lp.worktree}'` : `snapshot ${lp.snapshot_id}`}: ${lp.problem}`, {
      hint: 'run `jvs doctor --strict` to see every finding; `jvs worktree list` shows the heads',
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

function verifyBroken(broken: Array<{ id: string; error: JvsError }>): SnapshotVerification[] {
  return broken.map((b) => ({
    snapshot_id: b.id, checksum_valid: false, payload_hash_valid: false, ready_valid: false, lineage_valid: false,
    tamper_detected: true, severity: 'critical' as const, error_class: b.error.code, problems: [b.error.message],
  }));
}

/**
 * Lineage over the whole repository: parent links must not form a cycle, and every
 * worktree's head, latest and base must name an existing snapshot. (A missing parent
 * is reported per snapshot by verifyDescriptor.)
 */
export function checkLineage(layout: Layout, descriptors: Descriptor[]): LineageProblem[] {
  const problems: LineageProblem[] = [];
  const byId = new Map(descriptors.map((d) => [d.snapshot_id, d]));
  const done = new Set<string>();
  for (const d of descriptors) {
    const path: string[] = [];
    const onPath = new Set<string>();
    let cur: string | undefined = d.snapshot_id;
    while (cur && byId.has(cur) && !done.has(cur)) {
      if (onPath.has(cur)) {
        problems.push({ snapshot_id: cur, error_class: 'E_LINEAGE_BROKEN', problem: `parent links form a cycle (${path.slice(path.indexOf(cur)).join(' → ')} → ${cur})` });
        break;
      }
      onPath.add(cur);
      path.push(cur);
      cur = byId.get(cur)!.parent_id;
    }
    for (const p of path) done.add(p);
  }
  for (const name of listWorktreeNames(layout)) {
    let c;
    try {
      c = readWorktreeConfig(layout, name);
    } catch (e) {
      problems.push({ worktree: name, problem: (e as Error).message, error_class: e instanceof JvsError ? e.code : 'E_DESCRIPTOR_CORRUPT' });
      continue;
    }
    for (const k of ['head_snapshot_id', 'latest_snapshot_id'] as const) {
      const id = c[k];
      if (id && !byId.has(id)) problems.push({ worktree: name, error_class: 'E_LINEAGE_BROKEN', problem: `${k} names snapshot ${id}, which does not exist` });
    }
  }
  return problems;
}

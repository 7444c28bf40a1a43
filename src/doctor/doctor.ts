import fs from 'node:fs';
import { JvsError } from '../errors.js';
import { appendAudit } from '../repo/audit.js';
import { parsePin } from '../gc/pins.js';
import { readRepoConfig, type RepoConfig } from '../repo/config.js';
import { listIntents, stagePath } from '../repo/intents.js';
import type { Layout } from '../repo/layout.js';
import { withExclusiveRepo } from '../repo/lock.js';
import { faultPoint } from '../repo/faults.js';
import { loadDescriptors } from '../repo/snapshots.js';
import { listWorktreeNames } from '../repo/worktreeConfig.js';
import { changedPayloadFiles, checkLineage, indexManifestProblems, verifyDescriptor, withIndexProblem } from '../verify/verify.js';
import type { Reporter } from '../progress.js';
import { REPAIRS, type Finding, type PendingRepair, type RepairName } from './findings.js';
import { analyzeIntent } from './intentRepairs.js';
import { auditFindings, controlDirFindings, indexFindings, tmpFindings, type Owned } from './runtimeChecks.js';

export interface DoctorOptions {
  /** Re-hash every payload and check the audit chain end to end. */
  strict?: boolean;
  /** Apply the runtime repairs (clean_tmp, clean_intents, advance_head, rebuild_index, audit_repair). */
  repairRuntime?: boolean;
  lockWaitMs?: number;
  reporter?: Reporter;
}

export interface DoctorReport {
  healthy: boolean;
  strict: boolean;
  repair_runtime: boolean;
  findings: Finding[];
  /** Repairs applied in this run, in order. */
  repairs_applied: Array<{ repair: RepairName; path?: string; result: string }>;
  checked: { snapshots: number; worktrees: number; intents: number };
  /** Kept snapshots whose parent gc deleted (from its tombstone): expected after gc with a retention policy, not damage. */
  pruned_parents: Array<{ snapshot_id: string; parent_id: string; deleted_at: string }>;
}

export function repairList(): Array<{ name: RepairName; description: string }> {
  return (Object.keys(REPAIRS) as RepairName[]).map((name) => ({ name, description: REPAIRS[name] }));
}

/**
 * Check a repository and, with `repairRuntime`, repair what interrupted operations
 * left behind. Runs with no other operation running (the operations lock taken
 * exclusively, then the repository lock), so every intent it sees belongs to a
 * process that is gone. Order matters: intents first (finishing an operation may
 * consume its stage), then leftovers no remaining intent owns, then snapshots,
 * lineage, the audit log and the index cache. Damage to published data is reported,
 * never "repaired" away.
 */
export async function doctor(layout: Layout, opts: DoctorOptions = {}): Promise<DoctorReport> {
  let config: RepoConfig = {};
  const configFindings: Finding[] = [];
  try {
    config = await readRepoConfig(layout);
  } catch (e) {
    if (!(e instanceof JvsError)) throw e;
    configFindings.push({ check: 'config', severity: 'error', error_class: e.code, message: e.message, path: layout.configYaml });
  }
  return withExclusiveRepo(layout, { waitMs: opts.lockWaitMs, command: 'doctor', reporter: opts.reporter }, () => {
    // 0. The control folders themselves: with one swapped for a link, repair nothing.
    const unsafe = controlDirFindings(layout);
    const findings: Finding[] = [...configFindings, ...unsafe];
    const repair = !!opts.repairRuntime && !unsafe.some((f) => f.error_class === 'E_PATH_ESCAPE');
    const applied: DoctorReport['repairs_applied'] = [];
    const handle = (items: PendingRepair[]) => {
      for (const { finding, apply } of items) {
        if (repair && apply && finding.repair) {
          try {
            finding.repair_result = apply();
            finding.repaired = true;
            applied.push({ repair: finding.repair, ...(finding.path ? { path: finding.path } : {}), result: finding.repair_result });
            // Every repair is idempotent and leaves the repository consistent: a doctor
            // killed here (or anywhere) is simply run again (crash suite).
            faultPoint('doctor.1-repaired');
          } catch (e) {
            finding.repaired = false;
            finding.repair_result = `repair failed: ${(e as Error).message}`;
          }
        }
        findings.push(finding);
      }
    };

    // 1. Interrupted operations.
    const intents = listIntents(layout);
    for (const entry of intents) handle(analyzeIntent(layout, entry, config));

    // 2. Leftovers that no remaining intent owns.
    const owned: Owned = { snapshotIds: new Set(), tmpEntries: new Set() };
    for (const entry of listIntents(layout)) {
      const i = entry.intent;
      if (!i) {
        // Its stage (if any) is left alone until a person has looked at the record.
        const base = entry.file.slice(entry.file.lastIndexOf('/') + 1).replace(/\.json$/, '');
        owned.snapshotIds.add(base);
        continue;
      }
      if (i.snapshot_id) owned.snapshotIds.add(i.snapshot_id);
      owned.snapshotIds.add(i.id);
      owned.tmpEntries.add(stagePath(layout, i));
      if (i.operation === 'gc_run') {
        // gc stages are named after the snapshot being removed.
        for (const n of safeReaddir(layout.tmp)) if (n.startsWith('gc-')) owned.tmpEntries.add(layout.tmpPath(n));
      }
    }
    handle(tmpFindings(layout, owned));

    // 3. Published snapshots: structure always, payload hashes with --strict.
    const { descriptors, broken } = loadDescriptors(layout);
    for (const b of broken) {
      findings.push({ check: 'descriptor', severity: 'critical', error_class: b.error.code, message: b.error.message, path: layout.descriptor(b.id) });
    }
    const known = new Set([...descriptors.map((d) => d.snapshot_id), ...broken.map((b) => b.id)]);
    // The index's manifests (never opened while the index file itself is damaged: opening would replace it).
    const indexReadable = indexFindings(layout).length === 0;
    const indexProblems = opts.strict && indexReadable ? indexManifestProblems(layout, descriptors) : new Map();
    const prunedParents: DoctorReport['pruned_parents'] = [];
    for (const d of descriptors) {
      const v = withIndexProblem(verifyDescriptor(layout, d, known, opts.reporter, !!opts.strict), indexProblems.get(d.snapshot_id));
      if (v.parent_pruned) prunedParents.push({ snapshot_id: d.snapshot_id, parent_id: v.parent_pruned.snapshot_id, deleted_at: v.parent_pruned.deleted_at });
      if (v.severity !== 'ok') {
        findings.push({ check: 'snapshot', severity: v.severity === 'critical' ? 'critical' : 'error', error_class: v.error_class ?? 'E_PAYLOAD_HASH_MISMATCH', message: `snapshot ${d.snapshot_id}: ${v.problems.join('; ')}`, path: layout.snapshotDir(d.snapshot_id) });
      }
    }

    // Payload files written to since publish (stat against the manifest; --strict re-hashes them all anyway).
    for (const c of indexReadable ? changedPayloadFiles(layout, descriptors) : []) {
      findings.push({ check: 'snapshot', severity: 'critical', error_class: 'E_PAYLOAD_HASH_MISMATCH', message: `snapshot ${c.snapshot_id}: payload files changed since publish (size or mtime differ from the manifest): ${c.rels.map((r) => JSON.stringify(r)).join(', ')}${c.more ? ` and ${c.more} more` : ''}; \`jvs verify ${c.snapshot_id}\` re-hashes it, and restore refuses damaged files`, path: layout.snapshotDir(c.snapshot_id) });
    }

    // 4. Worktrees and lineage.
    const worktrees = listWorktreeNames(layout);
    for (const p of checkLineage(layout, descriptors)) {
      findings.push({ check: 'lineage', severity: 'error', error_class: p.error_class, message: `${p.worktree ? `worktree '${p.worktree}'` : `snapshot ${p.snapshot_id}`}: ${p.problem}`, ...(p.worktree ? { path: layout.worktreeConfig(p.worktree) } : {}) });
    }
    for (const w of worktrees) {
      try {
        layout.worktreeRoot(w);
      } catch (e) {
        if (!(e instanceof JvsError)) throw e;
        // A symlinked or misplaced root: every command refuses it; doctor says so (and never follows it).
        findings.push({ check: 'worktree', severity: 'critical', error_class: e.code, message: e.message, path: layout.payload(w) });
        continue;
      }
      if (!fs.existsSync(layout.payload(w))) {
        findings.push({ check: 'worktree', severity: 'error', error_class: 'E_NOT_FOUND', message: `payload folder of worktree '${w}' is missing (recreate it with \`mkdir\` and \`jvs restore HEAD\`)`, path: layout.payload(w) });
      }
    }

    const registered = new Set(worktrees);
    for (const n of safeReaddir(layout.otherWorktreePayloads).sort()) {
      if (registered.has(n) || n.startsWith('.')) continue;
      findings.push({ check: 'worktree', severity: 'warning', error_class: 'E_NOT_FOUND', message: `folder worktrees/${n} belongs to no worktree (its config is missing; an interrupted rename or remove?). Move it out of the repository if it is unwanted`, path: layout.payload(n) });
    }

    // Pins: readable, and naming snapshots that exist.
    for (const n of safeReaddir(layout.pins).filter((x) => x.endsWith('.json')).sort()) {
      const file = `${layout.pins}/${n}`;
      try {
        const pin = parsePin(fs.readFileSync(file, 'utf8'), file);
        if (!known.has(pin.snapshot_id)) {
          findings.push({ check: 'pin', severity: 'warning', error_class: 'E_NOT_FOUND', message: `pin names snapshot ${pin.snapshot_id}, which does not exist (remove it with \`jvs gc unpin ${pin.snapshot_id}\`)`, path: file });
        }
      } catch (e) {
        if (!(e instanceof JvsError)) throw e;
        findings.push({ check: 'pin', severity: 'error', error_class: e.code, message: e.message, path: file });
      }
    }

    // 5. Audit log and 6. index cache.
    handle(auditFindings(layout, descriptors));
    handle(indexFindings(layout));

    if (applied.length) {
      appendAudit(layout, { event_type: 'doctor_repair', details: { repairs: applied.map((a) => `${a.repair}: ${a.result}`) } });
    }
    return {
      healthy: findings.every((f) => f.repaired),
      strict: !!opts.strict,
      repair_runtime: !!opts.repairRuntime,
      findings,
      repairs_applied: applied,
      checked: { snapshots: descriptors.length + broken.length, worktrees: worktrees.length, intents: intents.length },
      pruned_parents: prunedParents,
    };
  });
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** The error an unhealthy report turns into: the class of its most severe open finding. */
export function doctorFailure(r: DoctorReport): JvsError | undefined {
  const open = r.findings.filter((f) => !f.repaired);
  if (!open.length) return undefined;
  const rank = { critical: 0, error: 1, warning: 2 } as const;
  const worst = [...open].sort((a, b) => rank[a.severity] - rank[b.severity])[0]!;
  const pending = open.filter((f) => f.repair && f.repaired === undefined).length;
  const manual = 'the rest need a person: `jvs verify --all` shows damaged snapshots (restore them from a healthy copy), and each finding names its file';
  const hint = pending === open.length
    ? 'run `jvs doctor --repair-runtime` to repair them'
    : pending > 0
      ? `run \`jvs doctor --repair-runtime\` for the ${pending} repairable finding${pending === 1 ? '' : 's'}; ${manual}`
      : manual.replace('the rest need', 'these need');
  return new JvsError(worst.error_class, `repository needs attention: ${open.length} finding${open.length === 1 ? '' : 's'}; worst: ${worst.message}`, {
    hint,
  });
}

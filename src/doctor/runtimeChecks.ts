import fs from 'node:fs';
import path from 'node:path';
import { appendAudit } from '../repo/audit.js';
import { checkAuditChain, type AuditRecord } from '../format/audit.js';
import type { Descriptor } from '../format/descriptor.js';
import { isSnapshotId } from '../format/snapshotId.js';
import { isCleanName } from '../format/controlNames.js';
import type { Layout } from '../repo/layout.js';
import { listWorktreeNames } from '../repo/worktreeConfig.js';
import { rebuildIndex } from '../index/rebuildIndex.js';
import type { Finding, PendingRepair } from './findings.js';

/** Leftover of writeFileAtomic: `<file>.<8 hex>.tmp`. */
const ATOMIC_TMP_RE = /\.[0-9a-f]{8}\.tmp$/;

function readdir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/**
 * Readers that hold no lock also use `.jvs/tmp/`: engine probes (`.probe-*`), clock
 * probes (`.clock-<pid>-*`), mount daemon logs (`mount-<pid>.log`) and sockets
 * (`.mount-<pid>-<worktree>.sock`), and restores stage files in `.apply-<pid>-*`. An entry naming
 * a live pid, or a hidden one younger than a minute, is not a leftover.
 */
function inUseByOthers(p: string, name: string): boolean {
  const pid = /^(?:\.clock-|\.?mount-|\.apply-)(\d+)[-.]/.exec(name)?.[1];
  if (pid) {
    try {
      process.kill(Number(pid), 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  if (name.startsWith('.')) {
    try {
      return Date.now() - fs.lstatSync(p).mtimeMs < 60_000;
    } catch {
      return true; // vanished: it was transient
    }
  }
  return false;
}

/**
 * The control folders doctor reads and deletes in must be real folders of this
 * repository: a `.jvs/tmp` swapped for a symbolic link would turn clean_tmp into a
 * deletion somewhere else. Any that is not makes the run report-only.
 */
export function controlDirFindings(layout: Layout): Finding[] {
  const out: Finding[] = [];
  const dirs = [layout.control, layout.worktreesMeta, layout.snapshots, layout.descriptors, layout.intents, layout.auditDir,
    layout.gc, layout.tombstones, layout.pins, layout.locks, layout.tmp];
  for (const n of readdir(layout.worktreesMeta)) {
    if (isCleanName(n)) dirs.push(layout.worktreeMetaDir(n));
    else out.push({ check: 'worktree', severity: 'critical', error_class: 'E_DESCRIPTOR_CORRUPT', message: `.jvs/worktrees holds ${JSON.stringify(n)}, which is not a valid worktree name; it is ignored (not written by JVS: inspect it and move it away)`, path: path.join(layout.worktreesMeta, n) });
  }
  for (const d of dirs) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(d);
    } catch {
      continue; // missing folders are created when needed
    }
    if (!st.isDirectory()) {
      out.push({ check: 'control', severity: 'critical', error_class: 'E_PATH_ESCAPE', message: `${path.relative(layout.root, d)} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}; doctor repairs nothing while the control folders are not real folders of this repository (replace it with a folder)`, path: d });
    }
  }
  return out;
}

/** Paths in-flight intents still own; clean_tmp never touches them. */
export interface Owned {
  snapshotIds: Set<string>;
  tmpEntries: Set<string>;
}

/**
 * Staging leftovers no intent owns: snapshot stages, descriptor temps, `.jvs/tmp/*`
 * and half-written control files. Also published-looking snapshot folders without a
 * descriptor: finished off when a gc tombstone says they were being deleted, else
 * reported (they may hold data, so only a human decides).
 */
export function tmpFindings(layout: Layout, owned: Owned): PendingRepair[] {
  const out: PendingRepair[] = [];
  const removable = (p: string, what: string) => {
    out.push({
      finding: { check: 'tmp', severity: 'warning', error_class: 'E_PARTIAL_SNAPSHOT', message: `leftover ${what}`, path: p, repair: 'clean_tmp' },
      apply: () => { fs.rmSync(p, { recursive: true, force: true }); return 'removed'; },
    });
  };
  for (const n of readdir(layout.snapshots)) {
    const p = path.join(layout.snapshots, n);
    if (n.endsWith('.tmp')) {
      const id = n.slice(0, -4);
      if (!owned.snapshotIds.has(id)) removable(p, 'snapshot stage of an interrupted snapshot');
      continue;
    }
    if (!isSnapshotId(n) || fs.existsSync(layout.descriptor(n)) || owned.snapshotIds.has(n)) continue;
    if (fs.existsSync(layout.tombstone(n))) {
      removable(p, 'payload of a snapshot gc had already deleted');
    } else {
      out.push({ finding: { check: 'snapshot', severity: 'critical', error_class: 'E_PARTIAL_SNAPSHOT', message: `snapshot folder ${n} has no descriptor (not published); inspect it and move it out of .jvs/snapshots if it is unwanted`, path: p } });
    }
  }
  for (const n of readdir(layout.descriptors)) {
    const p = path.join(layout.descriptors, n);
    if (n.endsWith('.json.tmp') && !owned.snapshotIds.has(n.slice(0, -'.json.tmp'.length))) removable(p, 'descriptor temp of an interrupted snapshot');
    else if (ATOMIC_TMP_RE.test(n)) removable(p, 'half-written descriptor file');
  }
  for (const n of readdir(layout.tmp)) {
    const p = path.join(layout.tmp, n);
    if (owned.tmpEntries.has(p) || inUseByOthers(p, n)) continue;
    removable(p, n.endsWith('.log') ? 'log of a mount daemon that is gone' : 'staging folder of an interrupted operation');
  }
  const controlDirs = [layout.control, layout.intents, layout.gc, layout.tombstones, layout.pins, ...listWorktreeNames(layout).map((w) => layout.worktreeMetaDir(w))];
  for (const d of controlDirs) {
    for (const n of readdir(d)) if (ATOMIC_TMP_RE.test(n)) removable(path.join(d, n), 'half-written control file');
  }
  return out;
}

/**
 * The audit log: a torn last line (a crash mid-append) is cut off; a broken chain
 * anywhere else is tampering or damage and is only reported. Snapshots published
 * after the last record have lost their snapshot_create record to a crash (the
 * record is the last step of the protocol) and get one marked as recovered.
 */
export function auditFindings(layout: Layout, descriptors: Descriptor[]): PendingRepair[] {
  let text = '';
  try {
    text = fs.readFileSync(layout.auditLog, 'utf8');
  } catch {
    /* no log yet */
  }
  const out: PendingRepair[] = [];
  let complete = text;
  if (text && !text.endsWith('\n')) {
    const cut = text.lastIndexOf('\n') + 1;
    complete = text.slice(0, cut);
    out.push({
      finding: { check: 'audit', severity: 'warning', error_class: 'E_AUDIT_CHAIN_BROKEN', message: 'the audit log ends in a torn (half-written) line', path: layout.auditLog, repair: 'audit_repair' },
      apply: () => { fs.truncateSync(layout.auditLog, Buffer.byteLength(complete)); return `cut ${Buffer.byteLength(text) - Buffer.byteLength(complete)} bytes off the end`; },
    });
  }
  const problems = checkAuditChain(complete);
  for (const p of problems.slice(0, 20)) {
    out.push({ finding: { check: 'audit', severity: 'critical', error_class: 'E_AUDIT_CHAIN_BROKEN', message: `audit log line ${p.line}: ${p.problem} (the log was edited or damaged; it is evidence and is not rewritten)`, path: layout.auditLog } });
  }
  if (problems.length) return out;
  const lines = complete.split('\n').filter(Boolean);
  const last = lines.length ? (JSON.parse(lines[lines.length - 1]!) as AuditRecord) : undefined;
  const lastTime = last ? Date.parse(last.timestamp) : -Infinity;
  const recorded = new Set<string>();
  for (const l of lines) {
    const r = JSON.parse(l) as AuditRecord;
    if (r.event_type === 'snapshot_create' && r.snapshot_id) recorded.add(r.snapshot_id);
  }
  const missing = descriptors.filter((d) => Date.parse(d.created_at) > lastTime && !recorded.has(d.snapshot_id));
  if (missing.length) {
    out.push({
      finding: { check: 'audit', severity: 'warning', error_class: 'E_AUDIT_CHAIN_BROKEN', message: `${missing.length} snapshot${missing.length === 1 ? '' : 's'} published after the last audit record ha${missing.length === 1 ? 's' : 've'} no snapshot_create record (${missing.map((d) => d.snapshot_id).join(', ')})`, path: layout.auditLog, repair: 'audit_repair' },
      apply: () => {
        for (const d of missing) appendAudit(layout, { event_type: 'snapshot_create', snapshot_id: d.snapshot_id, worktree_name: d.worktree_name, details: { engine: d.engine, payload_root_hash: d.payload_root_hash, recovered: true } });
        return `appended ${missing.length} recovered record${missing.length === 1 ? '' : 's'}`;
      },
    });
  }
  return out;
}

const SQLITE_MAGIC = 'SQLite format 3\0';

/**
 * `.jvs/index.sqlite` is a cache: one that is not a SQLite database is thrown away and
 * rebuilt from the descriptors and payloads (src/index/rebuildIndex).
 */
export function indexFindings(layout: Layout): PendingRepair[] {
  const file = layout.indexDb;
  let head: Buffer;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      head = Buffer.alloc(16);
      const n = fs.readSync(fd, head, 0, 16, 0);
      head = head.subarray(0, n);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    head = Buffer.alloc(0);
  }
  if (head.length === 0 || head.toString('latin1') === SQLITE_MAGIC) return [];
  return [{
    finding: { check: 'index', severity: 'warning', error_class: 'E_IO', message: 'the index cache .jvs/index.sqlite is not a readable SQLite database', path: file, repair: 'rebuild_index' },
    apply: () => {
      const r = rebuildIndex(layout);
      return r.rebuilt
        ? `rebuilt from ${r.snapshots} descriptor${r.snapshots === 1 ? '' : 's'} (${r.manifests} manifest${r.manifests === 1 ? '' : 's'}${r.skipped.length ? `, ${r.skipped.length} skipped` : ''})`
        : 'removed the damaged cache (no index can be written here; commands work without it)';
    },
  }];
}

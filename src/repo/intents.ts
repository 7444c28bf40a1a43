import fs from 'node:fs';
import path from 'node:path';
import { canonicalJson, formatTimestamp, type JsonValue } from '../format/canonicalJson.js';
import { isCleanName, isIntentId, isPlanId } from '../format/controlNames.js';
import { isSnapshotId } from '../format/snapshotId.js';
import { jsonFileNames, writeFileAtomic } from '../fsutil/atomic.js';
import type { Layout } from './layout.js';

/**
 * An intent names an operation in flight, so that `jvs doctor` can finish or roll
 * back whatever a crash interrupted. Written (file and folder fsynced) before the
 * first change, removed after the last.
 */
export interface Intent {
  /** Snapshot id for snapshots; an operation id otherwise (format/controlNames.ts isIntentId). */
  id: string;
  operation: 'snapshot' | 'restore' | 'fork' | 'gc_run' | 'worktree_remove';
  worktree_name?: string;
  snapshot_id?: string;
  started_at: string;
  engine?: string;
  pid: number;
  details?: { [k: string]: JsonValue | undefined };
}

export function writeIntent(layout: Layout, intent: Omit<Intent, 'started_at' | 'pid'>): Intent {
  const full: Intent = { ...intent, started_at: formatTimestamp(new Date()), pid: process.pid };
  fs.mkdirSync(layout.intents, { recursive: true });
  writeFileAtomic(layout.intent(full.id), canonicalJson(full as unknown as JsonValue) + '\n');
  return full;
}

export function completeIntent(layout: Layout, id: string): void {
  fs.rmSync(layout.intent(id), { force: true });
}

/** One entry of `.jvs/intents/`: the record, or why it cannot be used. */
export interface IntentEntry {
  file: string;
  intent?: Intent;
  error?: string;
  /**
   * `unreadable`: not JSON or not an intent object (no operation can be told from it).
   * `invalid`: an intent whose names or ids are not what JVS writes — a path, a
   * climbing name, a mismatched file name. Never acted on: only a person decides.
   */
  damage?: 'unreadable' | 'invalid';
}

const OPERATIONS: ReadonlySet<string> = new Set(['snapshot', 'restore', 'fork', 'gc_run', 'worktree_remove']);

/**
 * Read and check one intent. Every name in it is checked before any caller can turn
 * it into a path (format/controlNames.ts): the worktree name, the snapshot id, the
 * operation id (which must also be the file's name, or completing it would remove
 * another intent), a fork's stage (a folder directly under `.jvs/tmp/`) and a gc
 * run's plan id.
 */
export function parseIntent(file: string, text: string): IntentEntry {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { file, error: (e as Error).message, damage: 'unreadable' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { file, error: 'not a JSON object', damage: 'unreadable' };
  const i = raw as Record<string, unknown>;
  if (typeof i.id !== 'string' || typeof i.operation !== 'string') return { file, error: 'not an intent object (no id or operation)', damage: 'unreadable' };
  const invalid = (why: string): IntentEntry => ({ file, error: why, damage: 'invalid' });
  const shown = (v: unknown) => JSON.stringify(v);
  if (!isIntentId(i.id)) return invalid(`its id ${shown(i.id)} is not an operation id`);
  if (path.basename(file) !== `${i.id}.json`) return invalid(`its id ${shown(i.id)} does not match its file name`);
  if (!OPERATIONS.has(i.operation)) return invalid(`its operation ${shown(i.operation)} is unknown`);
  if (i.worktree_name === undefined && ['snapshot', 'restore', 'fork'].includes(i.operation)) return invalid('it names no worktree');
  if (i.worktree_name !== undefined && !isCleanName(i.worktree_name)) return invalid(`its worktree_name ${shown(i.worktree_name)} is not a valid worktree name`);
  if (i.snapshot_id !== undefined && (typeof i.snapshot_id !== 'string' || !isSnapshotId(i.snapshot_id))) return invalid(`its snapshot_id ${shown(i.snapshot_id)} is not a snapshot id`);
  if (i.operation === 'snapshot' && i.snapshot_id !== undefined && i.snapshot_id !== i.id) return invalid('its snapshot_id differs from its id');
  if (i.operation === 'snapshot' && !isSnapshotId(i.id)) return invalid(`its id ${shown(i.id)} is not a snapshot id`);
  const details = i.details;
  if (details !== undefined && (typeof details !== 'object' || details === null || Array.isArray(details))) return invalid('its details are not an object');
  const d = (details ?? {}) as Record<string, unknown>;
  // A fork stages in `.jvs/tmp/<id>`; the stored path is absolute, so only its last
  // component is trusted (a moved repository keeps valid intents) and callers use
  // stagePath(), never the stored string.
  if (d.stage !== undefined && (typeof d.stage !== 'string' || path.basename(d.stage) !== i.id)) {
    return invalid(`its stage ${shown(d.stage)} is not the operation's own folder under .jvs/tmp`);
  }
  if (i.operation === 'gc_run' && !isPlanId(d.plan_id)) return invalid(`its plan_id ${shown(d.plan_id)} is not a gc plan id`);
  return { file, intent: i as unknown as Intent };
}

/** Where an operation stages its work: `.jvs/tmp/<intent id>`, whatever the record says. */
export function stagePath(layout: Layout, i: Intent): string {
  return layout.tmpPath(i.id);
}

export function listIntents(layout: Layout): IntentEntry[] {
  return jsonFileNames(layout.intents).map((n) => {
    const file = path.join(layout.intents, n);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      return { file, error: (e as Error).message, damage: 'unreadable' };
    }
    return parseIntent(file, text);
  });
}

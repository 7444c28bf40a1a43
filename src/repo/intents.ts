import fs from 'node:fs';
import { canonicalJson, formatTimestamp, type JsonValue } from '../format/canonicalJson.js';
import { jsonFileNames, writeFileAtomic } from '../fsutil/atomic.js';
import type { Layout } from './layout.js';

/**
 * An intent names an operation in flight, so that `jvs doctor` can finish or roll
 * back whatever a crash interrupted. Written (file and folder fsynced) before the
 * first change, removed after the last.
 */
export interface Intent {
  /** Snapshot id for snapshots; an operation id otherwise. */
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

export function listIntents(layout: Layout): Array<{ file: string; intent?: Intent; error?: string }> {
  return jsonFileNames(layout.intents).map((n) => {
    const file = `${layout.intents}/${n}`;
    try {
      return { file, intent: JSON.parse(fs.readFileSync(file, 'utf8')) as Intent };
    } catch (e) {
      return { file, error: (e as Error).message };
    }
  });
}

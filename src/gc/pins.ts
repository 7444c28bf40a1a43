import fs from 'node:fs';
import path from 'node:path';
import { JvsError } from '../errors.js';
import { canonicalJson, formatTimestamp, isTimestamp, type JsonValue } from '../format/canonicalJson.js';
import { isSnapshotId } from '../format/snapshotId.js';
import { jsonFileNames, writeFileAtomic } from '../fsutil/atomic.js';
import { appendAudit } from '../repo/audit.js';
import type { Layout } from '../repo/layout.js';
import { withRepoLock } from '../repo/lock.js';
import { resolveRef } from '../repo/refs.js';
import { parseDuration } from '../repo/duration.js';
import { readWorktreeConfig, type WorktreeConfig } from '../repo/worktreeConfig.js';
import { parseJsonObject } from '../format/parseJson.js';

/** `.jvs/pins/<snapshot_id>.json`: keeps a snapshot out of gc until it expires. */
export interface Pin {
  snapshot_id: string;
  pinned_at: string;
  reason?: string;
  expires_at?: string;
}

function pinCorrupt(file: string, why: string): JvsError {
  return new JvsError('E_DESCRIPTOR_CORRUPT', `pin record ${file} is damaged: ${why}`, {
    hint: `fix or delete ${file}, then pin the snapshot again with \`jvs gc pin <ref>\``,
    details: { file },
  });
}

export function parsePin(text: string, file: string): Pin {
  const p = parseJsonObject(text, (why) => pinCorrupt(file, why));
  if (typeof p.snapshot_id !== 'string' || !isSnapshotId(p.snapshot_id)) throw pinCorrupt(file, 'snapshot_id is not a snapshot id');
  if (path.basename(file) !== `${p.snapshot_id}.json`) throw pinCorrupt(file, 'snapshot_id does not match the file name');
  if (!isTimestamp(p.pinned_at)) throw pinCorrupt(file, 'pinned_at is not a timestamp');
  if (p.reason !== undefined && typeof p.reason !== 'string') throw pinCorrupt(file, 'reason is not a string');
  if (p.expires_at !== undefined && !isTimestamp(p.expires_at)) throw pinCorrupt(file, 'expires_at is not a timestamp');
  return p as unknown as Pin;
}

/** Every pin, expired ones included (the caller decides what expiry means). */
export function listPins(layout: Layout): Pin[] {
  return jsonFileNames(layout.pins).map((n) => {
    const file = `${layout.pins}/${n}`;
    return parsePin(fs.readFileSync(file, 'utf8'), file);
  });
}

export function pinIsLive(p: Pin, now: number): boolean {
  return !p.expires_at || Date.parse(p.expires_at) > now;
}

/** `--expires` takes a duration from now (`30d`) or an RFC 3339 time. */
export function parseExpiry(text: string, now: number): string {
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (Number.isNaN(t)) throw new JvsError('E_USAGE', `--expires ${JSON.stringify(text)} is not a valid time`, { hint: 'e.g. `--expires 30d` or `--expires 2027-01-01T00:00:00Z`' });
    return formatTimestamp(new Date(t));
  }
  return formatTimestamp(new Date(now + parseDuration(text, '--expires')));
}

export interface PinOptions {
  ref: string;
  /** Worktree whose HEAD a `HEAD` ref means. */
  worktree?: string;
  reason?: string;
  expires?: string;
  lockWaitMs?: number;
}

/**
 * A pin written by an operation itself, under the lock its caller holds: the tip of a
 * line a new line left, or unsaved work restore kept. A pin the user made is left as
 * it is (their reason and expiry win). Returns the pin in force.
 */
export function pinByOperation(layout: Layout, id: string, reason: string): Pin {
  const file = layout.pin(id);
  if (fs.existsSync(file)) return parsePin(fs.readFileSync(file, 'utf8'), file);
  const pin: Pin = { snapshot_id: id, pinned_at: formatTimestamp(new Date()), reason };
  fs.mkdirSync(layout.pins, { recursive: true });
  writeFileAtomic(file, canonicalJson(pin as unknown as JsonValue) + '\n');
  appendAudit(layout, { event_type: 'gc_pin', snapshot_id: id, details: { reason, automatic: true } });
  return pin;
}

export function pinSnapshot(layout: Layout, opts: PinOptions): Pin {
  return withRepoLock(layout, { waitMs: opts.lockWaitMs, command: 'gc pin' }, () => {
    const id = resolveRef(layout, opts.ref, worktreeOf(layout, opts.worktree)).descriptor.snapshot_id;
    const now = Date.now();
    const pin: Pin = {
      snapshot_id: id,
      pinned_at: formatTimestamp(new Date(now)),
      ...(opts.reason ? { reason: opts.reason } : {}),
      ...(opts.expires ? { expires_at: parseExpiry(opts.expires, now) } : {}),
    };
    fs.mkdirSync(layout.pins, { recursive: true });
    writeFileAtomic(layout.pin(id), canonicalJson(pin as unknown as JsonValue) + '\n');
    appendAudit(layout, { event_type: 'gc_pin', snapshot_id: id, details: { ...(pin.reason ? { reason: pin.reason } : {}), ...(pin.expires_at ? { expires_at: pin.expires_at } : {}) } });
    return pin;
  });
}

function worktreeOf(layout: Layout, name: string | undefined): WorktreeConfig | undefined {
  return name ? readWorktreeConfig(layout, name) : undefined;
}

export function unpinSnapshot(layout: Layout, ref: string, lockWaitMs?: number, worktree?: string): { snapshot_id: string; was_pinned: boolean } {
  return withRepoLock(layout, { waitMs: lockWaitMs, command: 'gc unpin' }, () => {
    // A pin may outlive its snapshot's descriptor only through damage; accept a full id then.
    let id: string;
    try {
      id = resolveRef(layout, ref, worktreeOf(layout, worktree)).descriptor.snapshot_id;
    } catch (e) {
      if (isSnapshotId(ref) && fs.existsSync(layout.pin(ref))) id = ref;
      else throw e;
    }
    const file = layout.pin(id);
    if (!fs.existsSync(file)) {
      throw new JvsError('E_NOT_FOUND', `snapshot ${id} is not pinned`, { hint: 'run `jvs gc plan` to see what is protected' });
    }
    fs.rmSync(file);
    appendAudit(layout, { event_type: 'gc_unpin', snapshot_id: id });
    return { snapshot_id: id, was_pinned: true };
  });
}

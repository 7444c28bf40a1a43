import fs from 'node:fs';
import { formatTimestamp, type JsonValue } from '../format/canonicalJson.js';
import { auditRecordHash, serializeAuditRecord, type AuditRecord } from '../format/audit.js';
import { faultPoint } from './faults.js';
import type { Layout } from './layout.js';

/** The record_hash of the last line, read from the file's tail (the log only grows). */
function lastRecordHash(file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = fs.fstatSync(fd).size;
    let want = 4096;
    for (;;) {
      const len = Math.min(size, want);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      const text = buf.toString('utf8').replace(/\n+$/, '');
      const nl = text.lastIndexOf('\n');
      if (nl >= 0 || len === size) {
        const last = text.slice(nl + 1);
        if (!last) return '';
        try {
          return (JSON.parse(last) as AuditRecord).record_hash ?? '';
        } catch {
          return '';
        }
      }
      want *= 4;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Append one hash-chained record. Callers hold the repository lock, which is what
 * serialises appends; the write is a single O_APPEND write followed by fsync.
 */
export function appendAudit(
  layout: Layout,
  event: { event_type: string; snapshot_id?: string; worktree_name?: string; details?: Record<string, JsonValue | undefined> },
): AuditRecord {
  const base = {
    timestamp: formatTimestamp(new Date()),
    event_type: event.event_type,
    ...(event.snapshot_id ? { snapshot_id: event.snapshot_id } : {}),
    ...(event.worktree_name ? { worktree_name: event.worktree_name } : {}),
    ...(event.details && Object.keys(event.details).length ? { details: event.details } : {}),
    prev_hash: lastRecordHash(layout.auditLog),
  };
  const record: AuditRecord = { ...base, record_hash: auditRecordHash(base) };
  fs.mkdirSync(layout.auditDir, { recursive: true });
  const fd = fs.openSync(layout.auditLog, 'a', 0o644);
  try {
    faultPoint('audit.append');
    fs.writeSync(fd, serializeAuditRecord(record));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return record;
}

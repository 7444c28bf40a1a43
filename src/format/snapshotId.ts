import { randomBytes } from 'node:crypto';

/** `<13-digit unix ms>-<8 lower-case hex from a cryptographic source>` */
export const SNAPSHOT_ID_RE = /^\d{13}-[0-9a-f]{8}$/;

export function newSnapshotId(now: number = Date.now()): string {
  return `${String(now).padStart(13, '0')}-${randomBytes(4).toString('hex')}`;
}

export function isSnapshotId(s: string): boolean {
  return SNAPSHOT_ID_RE.test(s);
}

export function snapshotIdTime(id: string): Date {
  return new Date(Number(id.slice(0, 13)));
}

/**
 * The shortest prefixes (at least `min` chars) that tell each id apart from every
 * other id in `all`. The reference's fixed 8-char short id collides within 100 s.
 */
export function uniquePrefixes(ids: readonly string[], min = 8): Map<string, string> {
  const sorted = [...new Set(ids)].sort();
  const out = new Map<string, string>();
  for (let i = 0; i < sorted.length; i++) {
    const id = sorted[i]!;
    let need = min;
    for (const other of [sorted[i - 1], sorted[i + 1]]) {
      if (!other) continue;
      let common = 0;
      while (common < id.length && id[common] === other[common]) common++;
      need = Math.max(need, common + 1);
    }
    out.set(id, id.slice(0, Math.min(need, id.length)));
  }
  return out;
}

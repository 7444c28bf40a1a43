import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { JvsError } from '../errors.js';
import { compressionOf, storedName } from '../format/compression.js';
import { checksumRule, type Descriptor } from '../format/descriptor.js';
import { READY_FILE, type Layout } from '../repo/layout.js';

/** node:zlib on first use (only compressed snapshots need it; loading it costs every snapshot and restore ~0.4 ms). */
const zlib = () => createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib');

/** The marker of a snapshot: `.READY`, or `.READY.gz` in a compressed snapshot. */
export function readyPath(layout: Layout, d: Descriptor): string {
  return path.join(layout.snapshotDir(d.snapshot_id), compressionOf(d) ? storedName(READY_FILE) : READY_FILE);
}

/** The marker's JSON (`.READY.gz` decompressed); throws when it is missing or unreadable. */
export function readReadyMarker(layout: Layout, d: Descriptor): Record<string, unknown> {
  const file = readyPath(layout, d);
  const raw = fs.readFileSync(file);
  return JSON.parse((file.endsWith('.gz') ? zlib().gunzipSync(raw) : raw).toString('utf8')) as Record<string, unknown>;
}

/**
 * The cheap checks before anything is copied out of a snapshot (restore, fork): the
 * descriptor's checksum holds (v1 or legacy rule) and the snapshot was completed (its
 * `.READY` marker exists). Either failure stops the operation before it writes.
 */
export function assertRestorable(layout: Layout, d: Descriptor): void {
  const id = d.snapshot_id;
  if (!checksumRule(d)) {
    throw new JvsError('E_DESCRIPTOR_CORRUPT', `descriptor of snapshot ${id} fails its checksum: it was changed after the snapshot was taken`, {
      hint: `nothing was written; \`jvs verify ${id}\` shows the damage, \`jvs history\` lists other snapshots to restore`,
    });
  }
  let marker = false;
  try {
    marker = fs.lstatSync(readyPath(layout, d)).isFile();
  } catch {
    /* missing */
  }
  if (!marker) {
    throw new JvsError('E_PARTIAL_SNAPSHOT', `snapshot ${id} is incomplete: its ${path.basename(readyPath(layout, d))} marker is missing`, {
      hint: `nothing was written; \`jvs doctor --strict\` inspects the repository, \`jvs history\` lists other snapshots`,
    });
  }
}

import { JvsError } from '../errors.js';
import type { Descriptor } from './descriptor.js';

/**
 * Compressed snapshots, as the reference writes them (`jvs snapshot --compress`):
 * every regular file of the payload is stored gzip-compressed under `<name>.gz`, the
 * marker as `.READY.gz`, and the descriptor carries `"compression":{"type":"gzip",
 * "level":N}` (covered by its checksum). Folders and symlinks are stored as they are.
 * The payload root hash describes the tree before compression: real names, real
 * modes, uncompressed sizes and contents.
 */
export const GZ_SUFFIX = '.gz';

export type CompressLevelName = 'none' | 'fast' | 'default' | 'max';

/** The reference's names for gzip levels (`none` means no compression field at all). */
export const COMPRESS_LEVELS: Record<CompressLevelName, number> = { none: 0, fast: 1, default: 6, max: 9 };

export interface CompressionInfo {
  type: 'gzip';
  level: number;
}

/** Parse `--compress`; accepts the reference's names and its numeric aliases (0, 1, 6, 9). */
export function parseCompressLevel(raw: string): CompressionInfo | undefined {
  const s = raw.toLowerCase();
  const byNumber = Object.entries(COMPRESS_LEVELS).find(([, n]) => String(n) === s);
  const level = (COMPRESS_LEVELS as Record<string, number>)[s] ?? byNumber?.[1];
  if (level === undefined) {
    throw new JvsError('E_USAGE', `--compress ${JSON.stringify(raw)} is not a compression level`, { hint: 'use one of none, fast, default, max' });
  }
  return level === 0 ? undefined : { type: 'gzip', level };
}

/**
 * The compression a descriptor records, or undefined for a plain snapshot. An unknown
 * type is refused rather than restored as if plain (that would hand back `.gz` files).
 */
export function compressionOf(d: Descriptor): CompressionInfo | undefined {
  const c = d.compression;
  if (c === undefined || c === null) return undefined;
  if (typeof c !== 'object' || Array.isArray(c)) throw badCompression(d, 'compression is not an object');
  const type = (c as Record<string, unknown>).type;
  const level = (c as Record<string, unknown>).level;
  // The reference's struct omits an empty type and a zero level: both mean "none".
  if ((type === undefined || type === '' || type === 'none') && !level) return undefined;
  if (type !== 'gzip') throw badCompression(d, `compression type ${JSON.stringify(type)} is not supported (only gzip)`);
  return { type: 'gzip', level: typeof level === 'number' ? level : 6 };
}

function badCompression(d: Descriptor, why: string): JvsError {
  return new JvsError('E_DESCRIPTOR_CORRUPT', `snapshot ${d.snapshot_id}: ${why}`, { hint: `run \`jvs verify ${d.snapshot_id}\`` });
}

/** The stored name of a regular file in a compressed snapshot. */
export function storedName(name: string): string {
  return name + GZ_SUFFIX;
}

/** The real name of a stored regular file, or undefined when it cannot be one (no `.gz`). */
export function realName(stored: string): string | undefined {
  return stored.endsWith(GZ_SUFFIX) && stored.length > GZ_SUFFIX.length ? stored.slice(0, -GZ_SUFFIX.length) : undefined;
}

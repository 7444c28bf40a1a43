import { spawnSync } from 'node:child_process';

/**
 * Where a file on JuiceFS holds data. JuiceFS serves no SEEK_DATA (lseek answers "data
 * everywhere") and reports st_blocks from the length, so a sparse file looks dense and
 * hashing it would read every hole through FUSE (~12 s per GiB of zeros measured here).
 * `juicefs info <file>` lists the file's slices from its metadata: one row per object
 * with the file position (`pos`) and `length` it covers; rows without an object name
 * are JuiceFS's zero slices (holes), and ranges no row covers read as zeros too. The
 * data runs are the rows that name an object. jvs_hash.c's hashRuns reads only those
 * and hashes the rest as zeros, as the copy engines do with SEEK_DATA.
 *
 * Anything unexpected (the command fails, the table is not the one described here, a
 * length other than the file's, a row outside the file) gives undefined, and the caller
 * reads the whole file: slower, never a wrong hash from a misread table.
 */

/** Files from this size up are worth one `juicefs info` (~0.1 s) before hashing. */
export const RUNS_PROBE_MIN = 128 * 2 ** 20;

/** The data runs of `text` (`juicefs info` of one file of `size` bytes) as sorted start, end pairs. */
export function parseObjectRuns(text: string, size: number): BigInt64Array | undefined {
  const lines = text.split('\n');
  const lengthLine = lines.find((l) => /^\s*length:/.test(l));
  const m = lengthLine && /\((\d+) Bytes\)/.exec(lengthLine);
  if (!m || Number(m[1]) !== size) return undefined;
  const at = lines.findIndex((l) => l.trim() === 'objects:');
  if (at < 0) return undefined;
  const rows: string[][] = [];
  for (const l of lines.slice(at + 1)) {
    if (l.startsWith('+')) continue;
    if (!l.startsWith('|')) break;
    rows.push(l.split('|').slice(1, -1).map((c) => c.trim()));
  }
  const header = rows.shift();
  if (!header || header.join(',') !== 'chunkIndex,objectName,size,offset,length,pos') return undefined;
  const runs: Array<[number, number]> = [];
  for (const r of rows) {
    if (r.length !== 6 || ![r[0], r[2], r[3], r[4], r[5]].every((c) => /^\d+$/.test(c!))) return undefined;
    const pos = Number(r[5]);
    const end = pos + Number(r[4]);
    if (end > size) return undefined;
    if (r[1] !== '' && end > pos) runs.push([pos, end]);
  }
  runs.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [s, e] of runs) {
    const last = merged.at(-1);
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else merged.push([s, e]);
  }
  return BigInt64Array.from(merged.flat(), (n) => BigInt(n));
}

/** The data runs of `file` (a path on a JuiceFS mount) by `juicefs info`, or undefined (see above). */
export function juicefsDataRuns(cli: string, file: string, size: number): BigInt64Array | undefined {
  if (!file.isWellFormed()) return undefined; // a name that is not UTF-8 cannot be passed as an argument string
  const r = spawnSync(cli, ['info', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, maxBuffer: 256 << 20 });
  if (r.status !== 0 || r.error) return undefined;
  return parseObjectRuns(r.stdout, size);
}

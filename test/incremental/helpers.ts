import fs from 'node:fs';
import path from 'node:path';
import { jvsOk } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

/** Copy engine everywhere in these tests: it is the one that links unchanged files between snapshots. */
export const COPY = { JVS_SNAPSHOT_ENGINE: 'copy' };

export function newRepo() {
  const dir = tmpDir('jvs-incr-');
  jvsOk(['init', 'repo'], { cwd: dir });
  const root = path.join(dir, 'repo');
  return { root, main: path.join(root, 'main'), snaps: path.join(root, '.jvs/snapshots'), index: path.join(root, '.jvs/index.sqlite') };
}

export function snap(main: string, note: string, env: Record<string, string> = COPY) {
  return jvsOk(['snapshot', note, '--json'], { cwd: main, env }).json();
}

export function restore(main: string, ref: string, env: Record<string, string> = COPY) {
  return jvsOk(['restore', ref, '--json'], { cwd: main, env }).json();
}

export function status(main: string) {
  return jvsOk(['status', '--json'], { cwd: main }).json();
}

export function verifyAll(main: string) {
  return jvsOk(['verify', '--all', '--json'], { cwd: main }).json();
}

/** A file's inode and ctime, to tell whether anything rewrote or touched it. */
export function stamp(p: string): string {
  const st = fs.lstatSync(p, { bigint: true });
  return `${st.ino}:${st.ctimeNs}`;
}

/** Inodes of every regular file under `dir`. */
export function inodes(dir: string): Map<bigint, string> {
  const out = new Map<bigint, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(fs.lstatSync(p, { bigint: true }).ino, p);
    }
  };
  walk(dir);
  return out;
}

/** Bytes allocated to regular files below `dir`, each inode counted once. */
export function fileBytes(dir: string): number {
  const seen = new Set<bigint>();
  let total = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const st = fs.lstatSync(p, { bigint: true });
        if (seen.has(st.ino)) continue;
        seen.add(st.ino);
        total += Number(st.blocks) * 512;
      }
    }
  };
  walk(dir);
  return total;
}

/** Deterministic pseudo-random bytes (incompressible enough, reproducible). */
export function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

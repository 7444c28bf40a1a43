import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { jvsOk } from '../helpers/cli.js';
import { tmpDir, writeFiles } from '../helpers/tmp.js';
import type { Repo } from '../integrity/support.js';

/**
 * A repository with victims around it: `<base>/repo` is the repository, every other
 * entry of `<base>` is outside it. outsideHash() digests everything outside (names,
 * types, modes, link targets, contents), so a test proves that nothing there changed.
 */
export interface Arena {
  base: string;
  repo: Repo;
  outsideHash(): string;
}

export function arena(victims: Record<string, string> = {}): Arena {
  const base = tmpDir('jvs-hostile-ctl-');
  jvsOk(['init', 'repo'], { cwd: base });
  const root = path.join(base, 'repo');
  writeFiles(base, { 'victim/precious.txt': 'precious', 'victim/sub/deep.txt': 'deep', 'victim3.tmp/keep.txt': 'keep', ...victims });
  return {
    base,
    repo: { root, main: path.join(root, 'main'), ctl: path.join(root, '.jvs') },
    outsideHash: () => hashTree(base, (rel) => rel === 'repo'),
  };
}

export function hashTree(root: string, skip: (rel: string) => boolean = () => false): string {
  const h = crypto.createHash('sha256');
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip(r)) continue;
      const abs = path.join(dir, name);
      const st = fs.lstatSync(abs);
      h.update(`${r}\0${st.mode}\0`);
      if (st.isSymbolicLink()) h.update(`link:${fs.readlinkSync(abs)}`);
      else if (st.isDirectory()) walk(abs, r);
      else h.update(fs.readFileSync(abs));
      h.update('\n');
    }
  };
  walk(root, '');
  return h.digest('hex');
}

/** Write a control-plane JSON file as an attacker would (no checks, no atomicity). */
export function plant(file: string, doc: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
}

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

export const FIXTURE_TAR = path.join(ROOT, 'test/fixtures/interop/reference-repos.tar.gz');

export interface ReferenceRepos {
  dir: string;
  plain: string;
  compressed: string;
  expected: string;
}

/** A fresh copy of the reference's repositories (modes, links and empty folders kept). */
export function referenceRepos(): ReferenceRepos {
  const dir = tmpDir('jvs-ref-');
  execFileSync('tar', ['-xzpf', FIXTURE_TAR, '-C', dir]);
  return { dir, plain: path.join(dir, 'plain'), compressed: path.join(dir, 'compressed'), expected: path.join(dir, 'expected') };
}

export function expectedJson<T = any>(repos: ReferenceRepos, name: string): T {
  return JSON.parse(fs.readFileSync(path.join(repos.expected, name), 'utf8')) as T;
}

export function snapshotIds(repo: string): string[] {
  return fs.readdirSync(path.join(repo, '.jvs/descriptors')).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).sort();
}

export function descriptorOf(repo: string, id: string): any {
  return JSON.parse(fs.readFileSync(path.join(repo, '.jvs/descriptors', `${id}.json`), 'utf8'));
}

/**
 * rel → "type mode size/target sha" of a tree, `.READY` left out: bytes, modes,
 * symlinks and empty folders compared at once. Hard-link groups are listed apart.
 */
export function treeFacts(root: string, skip: (rel: string) => boolean = (rel) => rel === '.READY'): { entries: Record<string, string>; links: string[][] } {
  const entries: Record<string, string> = {};
  const byInode = new Map<string, string[]>();
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip(r)) continue;
      const abs = path.join(dir, name);
      const st = fs.lstatSync(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) entries[r] = `symlink ${fs.readlinkSync(abs)}`;
      else if (st.isDirectory()) {
        entries[`${r}/`] = `dir ${mode}`;
        walk(abs, r);
      } else {
        entries[r] = `file ${mode} ${fs.readFileSync(abs).toString('base64')}`;
        if (st.nlink > 1) byInode.set(`${st.ino}`, [...(byInode.get(`${st.ino}`) ?? []), r]);
      }
    }
  };
  walk(root, '');
  return { entries, links: [...byInode.values()].filter((g) => g.length > 1).map((g) => g.sort()).sort() };
}

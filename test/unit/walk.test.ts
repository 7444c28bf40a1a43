import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { walkTree } from '../../src/fsutil/walk.js';
import { native } from '../../src/native/native.js';
import { tmpDir } from '../helpers/tmp.js';
import { itWith } from '../helpers/prereq.js';

/** The order and stats walkTree promises, computed the slow obvious way. */
function reference(root: string, rel = ''): Array<{ rel: string; st: fs.BigIntStats }> {
  const out: Array<{ rel: string; st: fs.BigIntStats }> = [];
  for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const st = fs.lstatSync(path.join(root, r), { bigint: true });
    out.push({ rel: r, st });
    if (st.isDirectory()) out.push(...reference(root, r));
  }
  return out;
}

function tree(): string {
  const root = tmpDir();
  // Names whose UTF-8 byte order differs from JavaScript's (UTF-16) order, plus
  // case, digits, punctuation that sorts around '/', and nesting several levels deep.
  const names = ['a', 'B', 'a-b', 'a b', '10', '9', 'é', '\u{1F600}x', '\uE000y', '\uFFFDz'];
  for (const top of ['x', 'x-y', 'x.y', '\u{1F600}', '\uE001']) {
    fs.mkdirSync(path.join(root, top, 'deep/er/still'), { recursive: true });
    for (const n of names) fs.writeFileSync(path.join(root, top, n), n);
    fs.writeFileSync(path.join(root, top, 'deep/er/still/leaf'), 'leaf');
    fs.symlinkSync('../nowhere', path.join(root, top, 'deep/link'));
  }
  fs.linkSync(path.join(root, 'x/a'), path.join(root, 'x-y/hard'));
  return root;
}

describe('walkTree', () => {
  itWith('native', native() ? undefined : 'the jvs_native addon is not built (npm run build:native)', 'lists what a plain recursive readdir + lstat lists, in the same order, with the same stats (native scan on every core)', () => {
    const root = tree();
    const want = reference(root);
    const got = walkTree(root).entries;
    expect(got.map((e) => e.rel)).toEqual(want.map((w) => w.rel));
    for (let i = 0; i < got.length; i++) {
      const g = got[i]!.stat;
      const w = want[i]!.st;
      // (atime left out: the reference's own readdir moves folders' access times)
      expect([g.mode, g.nlink, g.uid, g.gid, g.size, g.mtimeNs, g.ctimeNs, g.ino, g.dev]).toEqual([w.mode, w.nlink, w.uid, w.gid, w.size, w.mtimeNs, w.ctimeNs, w.ino, w.dev]);
      if (!g.isDirectory()) expect(g.atimeNs).toBe(w.atimeNs);
      expect([g.isFile(), g.isDirectory(), g.isSymbolicLink()]).toEqual([w.isFile(), w.isDirectory(), w.isSymbolicLink()]);
    }
  });

  it('never looks inside a folder the filter leaves out', () => {
    const root = tree();
    const seen: string[] = [];
    const got = walkTree(root, { include: (rel) => (seen.push(rel), !rel.startsWith('x/deep')) }).entries.map((e) => e.rel);
    expect(got.some((r) => r.startsWith('x/deep'))).toBe(false);
    expect(seen.filter((r) => r.startsWith('x/deep/'))).toEqual([]);
    expect(got).toContain('x/a');
  });

  it('reports sockets and FIFOs as unsupported instead of listing them', () => {
    const root = tmpDir();
    fs.mkdirSync(path.join(root, 'd'));
    fs.writeFileSync(path.join(root, 'd/f'), '1');
    execFileSync('mkfifo', [path.join(root, 'd/pipe')]);
    const w = walkTree(root);
    expect(w.entries.map((e) => e.rel)).toEqual(['d', 'd/f']);
    expect(w.unsupported).toEqual(['d/pipe']);
  });

  it('a folder that cannot be read fails the walk with its errno code', () => {
    const root = tmpDir();
    fs.writeFileSync(path.join(root, 'file'), 'x');
    expect(() => walkTree(path.join(root, 'file'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
    expect(() => walkTree(path.join(root, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});

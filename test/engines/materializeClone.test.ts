// materializeByClone (the juicefs-clone engine's materialise step) on a local folder, with
// `cp -a` standing in for `juicefs clone`: the source walk may stand for the walk of the
// clone only when no entry of the source changed since the probe taken before the clone.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { materializeByClone } from '../../src/engines/materializeClone.js';
import { fsClockNs } from '../../src/index/changeDetect.js';
import { tmpDir, writeFiles } from '../helpers/tmp.js';

const sha = (p: string) => crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
const cpClone = (src: string, dst: string) => {
  const r = spawnSync('cp', ['-a', src, dst]);
  if (r.status !== 0) throw new Error(`cp -a failed: ${r.stderr}`);
};
const skipIgnored = { include: (rel: string) => !rel.startsWith('ignored') };

/** A source tree old enough that the probe taken next is later than every ctime in it. */
async function oldTree() {
  const base = tmpDir();
  const src = path.join(base, 'src');
  writeFiles(src, { 'a.txt': 'alpha', 'd/b.txt': 'beta', 'ignored/x': 'x', 'd/e/c.txt': 'gamma' });
  fs.symlinkSync('a.txt', path.join(src, 'ln'));
  await new Promise((r) => setTimeout(r, 30)); // past the coarse clock tick of the last ctime
  return { base, src, probe: fsClockNs(base) };
}

describe('materializeByClone: the source walk standing for the walk of the clone', () => {
  it('an unchanged source stands for the clone: no walk of it, the same manifest, excluded paths still pruned', async () => {
    const { base, src, probe } = await oldTree();
    const withProbe = materializeByClone(src, path.join(base, 'c1'), cpClone, skipIgnored, { probeNs: probe });
    const walked = materializeByClone(src, path.join(base, 'c2'), cpClone, skipIgnored, {});
    expect(withProbe.cloneWalked).toBe(false);
    expect(walked.cloneWalked).toBe(true);
    const strip = (es: typeof walked.entries) => es.map(({ rel, type, mode, size, contentHash, target, mtimeNs }) => ({ rel, type, mode, size, contentHash, target, mtimeNs }));
    expect(strip(withProbe.entries)).toEqual(strip(walked.entries));
    expect(withProbe.entries.map((e) => e.rel)).toEqual(['a.txt', 'd', 'd/b.txt', 'd/e', 'd/e/c.txt', 'ln']);
    expect(fs.existsSync(path.join(base, 'c1/ignored'))).toBe(false);
  });

  it('a source that changed during the clone makes it walk the clone: the manifest describes what the clone holds', async () => {
    const { base, src, probe } = await oldTree();
    const dst = path.join(base, 'c');
    // The user keeps working while the clone runs: after it, a file grows, one appears, one goes.
    // (With a top-level folder left out, each kept top-level folder is cloned on its own.)
    let edited = false;
    const cloneThenEdit = (s: string, d: string) => {
      cpClone(s, d);
      if (edited) return;
      edited = true;
      fs.appendFileSync(path.join(src, 'd/b.txt'), ' and more');
      fs.writeFileSync(path.join(src, 'd/new.txt'), 'new');
      fs.rmSync(path.join(src, 'd/e/c.txt'));
    };
    const m = materializeByClone(src, dst, cloneThenEdit, skipIgnored, { probeNs: probe });
    expect(m.cloneWalked).toBe(true);
    const rels = m.entries.map((e) => e.rel);
    expect(rels).toContain('d/e/c.txt');
    expect(rels).not.toContain('d/new.txt');
    const b = m.entries.find((e) => e.rel === 'd/b.txt')!;
    expect(b.contentHash).toBe(sha(path.join(dst, 'd/b.txt')));
    expect(b.size).toBe(4);
  });

  it('a change to one deep file only (its ctime moves) is enough to walk the clone', async () => {
    const { base, src, probe } = await oldTree();
    fs.chmodSync(path.join(src, 'd/e/c.txt'), 0o600);
    const m = materializeByClone(src, path.join(base, 'c'), cpClone, skipIgnored, { probeNs: probe });
    expect(m.cloneWalked).toBe(true);
    expect(m.entries.find((e) => e.rel === 'd/e/c.txt')!.mode).toBe(0o600);
  });
});

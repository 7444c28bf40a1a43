// Extended attributes on JuiceFS: `juicefs clone --preserve` (snapshot, fork) keeps them
// itself, copy_file_range (restore of single files) does not, and the attribute pass
// (src/engines/xattrs.ts) fills in; on a mount without --enable-xattr there are none to keep.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { jvsOk } from '../helpers/cli.js';
import { itWith } from '../helpers/prereq.js';
import { writeFiles } from '../helpers/tmp.js';
import { juicefsMissing, localVolume, type Volume } from './volume.js';

const pythonMissing = spawnSync('python3', ['-c', 'import os; os.getxattr']).status === 0 ? undefined : 'python3 with os.getxattr (the xattr witness)';
const missing = juicefsMissing() ?? pythonMissing;
let vol: Volume | undefined;
beforeAll(() => {
  if (!missing) vol = localVolume({ xattrs: true });
});
afterAll(async () => vol?.close());

function py(ops: Array<[string, string, string?, string?]>): Array<Record<string, string>> {
  const script = `
import json, os, sys
out = []
for verb, p, name, value in json.load(sys.stdin):
    if verb == 'set': os.setxattr(p, name, value.encode(), follow_symlinks=False)
    elif verb == 'del': os.removexattr(p, name, follow_symlinks=False)
    elif verb == 'get':
        out.append({n: os.getxattr(p, n, follow_symlinks=False).decode() for n in sorted(os.listxattr(p, follow_symlinks=False))})
print(json.dumps(out))
`;
  const r = spawnSync('python3', ['-c', script], { input: JSON.stringify(ops.map((o) => [o[0], o[1], o[2] ?? null, o[3] ?? null])), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 xattr helper failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('extended attributes on a JuiceFS volume mounted with --enable-xattr', () => {
  itWith('JuiceFS and python3', missing, 'clone snapshots and forks keep them; a restore puts back the ones a rewritten file lost', () => {
    const parent = fs.mkdtempSync(path.join(vol!.mounts[0]!, 'case-'));
    jvsOk(['init', 'repo'], { cwd: parent });
    const root = path.join(parent, 'repo');
    const main = path.join(root, 'main');
    writeFiles(main, { 'a.txt': 'alpha\n', 'dir/b.txt': 'bravo\n' });
    py([['set', `${main}/a.txt`, 'user.note', 'one'], ['set', `${main}/dir`, 'user.dir', 'D']]);
    const s = jvsOk(['snapshot', 'x', '--json'], { cwd: main }).json<{ snapshot_id: string; engine: string; degraded: string[] }>();
    expect(s.engine).toBe('juicefs-clone');
    expect(s.degraded).toEqual([]);
    const snap = path.join(root, '.jvs/snapshots', s.snapshot_id);
    expect(py([['get', `${snap}/a.txt`], ['get', `${snap}/dir`]])).toEqual([{ 'user.note': 'one' }, { 'user.dir': 'D' }]);
    const f = jvsOk(['worktree', 'fork', s.snapshot_id, 'f', '--json'], { cwd: main }).json<{ path: string; degraded?: string[] }>();
    expect(f.degraded).toBeUndefined();
    expect(py([['get', `${f.path}/a.txt`], ['get', `${f.path}/dir`]])).toEqual([{ 'user.note': 'one' }, { 'user.dir': 'D' }]);
    fs.rmSync(`${main}/a.txt`);
    fs.writeFileSync(`${main}/a.txt`, 'changed\n');
    py([['del', `${main}/dir`, 'user.dir']]);
    const r = jvsOk(['restore', s.snapshot_id, '--discard-changes', '--json'], { cwd: main }).json<{ degraded?: string[] }>();
    expect(r.degraded).toBeUndefined();
    expect(fs.readFileSync(`${main}/a.txt`, 'utf8')).toBe('alpha\n');
    expect(py([['get', `${main}/a.txt`], ['get', `${main}/dir`]])).toEqual([{ 'user.note': 'one' }, { 'user.dir': 'D' }]);
  }, 180_000);
});

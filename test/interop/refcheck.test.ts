import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { descriptorChecksum, legacyDescriptorChecksum, type Descriptor } from '../../src/format/descriptor.js';
import { ROOT, jvsOk } from '../helpers/cli.js';
import { itWith } from '../helpers/prereq.js';
import { writeFiles } from '../helpers/tmp.js';
import { newRepo } from '../integrity/support.js';
import { referenceRepos } from './referenceFixture.js';

/**
 * Format v1 interop, ours → reference: scripts/refcheck reads a repository the way the
 * reference does (its Go structs, encoding/json, gzip) and reports every checksum,
 * record hash, marker or payload hash it would not accept. It must find nothing in
 * repositories we write, and it must find the damage we plant (so it can fail).
 */
const goMissing = spawnSync('go', ['version']).status === 0 ? undefined : 'the go toolchain is not installed (scripts/refcheck is a Go program)';

function refcheck(repo: string) {
  const r = spawnSync('go', ['run', '.', repo], { cwd: path.join(ROOT, 'scripts/refcheck'), encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('the reference-rule reader accepts what we write', () => {
  itWith('go', goMissing, 'a repository of ours: notes needing escapes, tags, partial and compressed snapshots, restores, forks', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'alpha\n', 'Assets/x.bin': 'xx', 'Assets/y.gz': 'raw', 'doc/readme.md': '# hi\n' });
    fs.symlinkSync('a.txt', path.join(repo.main, 'link'));
    const run = (args: string[], cwd = repo.main) => jvsOk(args, { cwd }).json();
    const first = run(['snapshot', 'fix <html> & "quotes"\nnaïve 日本 😀', '--tag', 'v1.0', '--tag', 'release', '--json']);
    fs.writeFileSync(path.join(repo.main, 'a.txt'), 'beta\n');
    run(['snapshot', 'partial', '--paths', 'Assets', '--json']);
    for (const level of ['fast', 'default', 'max']) {
      fs.appendFileSync(path.join(repo.main, 'a.txt'), level);
      run(['snapshot', `gz ${level}`, '--compress', level, '--json']);
    }
    run(['snapshot', 'plain after gz', '--json']);
    run(['restore', first.snapshot_id, '--json']);
    run(['worktree', 'fork', 'v1.0', 'side', '--json']);
    fs.writeFileSync(path.join(repo.root, 'worktrees/side/new.txt'), 'n');
    run(['snapshot', 'in the fork', '--json'], path.join(repo.root, 'worktrees/side'));
    const r = refcheck(repo.root);
    expect(r.out).toContain('checked 7 descriptors');
    expect(r.code, r.out).toBe(0);
  });

  itWith('go', goMissing, "our snapshots inside the reference's own repository", () => {
    const r = referenceRepos();
    const main = path.join(r.plain, 'main');
    jvsOk(['restore', 'HEAD'], { cwd: main });
    fs.writeFileSync(path.join(main, 'ours.txt'), 'ours');
    jvsOk(['snapshot', 'ours', '--compress', 'fast'], { cwd: main });
    jvsOk(['snapshot', 'ours plain'], { cwd: main });
    const out = refcheck(r.plain);
    expect(out.code, out.out).toBe(0);
  });

  itWith('go', goMissing, 'it reports a checksum by the legacy rule, an unknown descriptor field and a broken audit line', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'a' });
    const id = jvsOk(['snapshot', 'one', '--json'], { cwd: repo.main }).json().snapshot_id;
    const file = path.join(repo.ctl, 'descriptors', `${id}.json`);
    const d = JSON.parse(fs.readFileSync(file, 'utf8'));
    fs.writeFileSync(file, JSON.stringify({ ...d, extra_field: 1 }));
    fs.writeFileSync(path.join(repo.main, 'a.txt'), 'b');
    const id2 = jvsOk(['snapshot', 'two', '--json'], { cwd: repo.main }).json().snapshot_id;
    const file2 = path.join(repo.ctl, 'descriptors', `${id2}.json`);
    const d2 = JSON.parse(fs.readFileSync(file2, 'utf8')) as Descriptor;
    fs.writeFileSync(file2, JSON.stringify({ ...d2, descriptor_checksum: legacyDescriptorChecksum(d2) }));
    fs.appendFileSync(path.join(repo.ctl, 'audit/audit.jsonl'), '{"timestamp":"2026-01-01T00:00:00Z","event_type":"x","prev_hash":"","record_hash":"00"}\n');
    const out = refcheck(repo.root);
    expect(out.code).toBe(1);
    expect(out.out).toContain('extra_field');
    expect(out.out).toContain(`${id2}: checksum ${legacyDescriptorChecksum(d2)}, the reference computes ${descriptorChecksum(d2)}`);
    expect(out.out).toMatch(/audit line \d+: record_hash/);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { legacyDescriptorChecksum, serializeDescriptor, type Descriptor } from '../../src/format/descriptor.js';
import { writeFiles } from '../helpers/tmp.js';
import { expectError, newRepo, run, snapshot, treeState, worktreeConfig } from '../integrity/support.js';

/** Behaviours the reference has and users of both tools rely on (issue 12). */

describe('unknown commands exit non-zero with E_USAGE naming the command', () => {
  const repo = () => newRepo();
  it.each([
    [['nosuch', '--help'], 'nosuch'],
    [['help', 'nosuch'], 'nosuch'],
    [['pin', '--help'], 'pin'],
    [['gc', 'nosuch', '--help'], 'gc nosuch'],
    [['worktree', 'help', 'nosuch'], 'worktree nosuch'],
  ])('jvs %j', (args, named) => {
    const r = repo();
    const human = run(args, r.main);
    expect(human.code).toBe(2);
    expect(human.stderr).toContain(`E_USAGE`);
    expect(human.stderr).toContain(`unknown command '${named}'`);
    expect(human.stdout).not.toContain('Usage:');
    expectError(run([...args, '--json'], r.main), 'E_USAGE');
  });

  it.each([
    [['unmount', '/mnt/x'], 'jvs umount'],
    [['snapshto', 'msg'], 'jvs snapshot'],
    [['worktree', 'frok', 'HEAD', 'x'], 'jvs worktree fork'],
    [['gc', 'plna'], 'jvs gc plan'],
  ])('a near miss names the command it likely meant: jvs %j', (args, meant) => {
    const r = repo();
    const human = run(args, r.main);
    expect(human.code).toBe(2);
    expect(human.stderr).toContain(`did you mean \`${meant}\`?`);
    const asJson = run([...args, '--json'], r.main);
    expectError(asJson, 'E_USAGE');
    expect(asJson.stdout).toContain(meant);
  });

  it('a word close to nothing (or to two commands alike) suggests nothing', () => {
    const r = repo();
    for (const args of [['nosuch'], ['zz'], ['frobnicate']]) {
      const h = run(args, r.main);
      expect(h.code, args.join(' ')).toBe(2);
      expect(h.stderr).not.toContain('did you mean');
    }
  });

  it('known commands keep their help (exit 0)', () => {
    const r = repo();
    for (const args of [['--help'], ['help'], ['help', 'gc'], ['gc', 'pin', '--help'], ['snapshot', '--help']]) {
      const h = run(args, r.main);
      expect(h.code, args.join(' ')).toBe(0);
      expect(h.stdout).toContain('Usage:');
    }
  });
});

describe('restore and fork refuse a damaged or incomplete snapshot before writing anything', () => {
  function setup() {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'one\n' });
    const first = snapshot(repo, 'first');
    fs.writeFileSync(path.join(repo.main, 'a.txt'), 'two\n');
    const second = snapshot(repo, 'second');
    return { repo, first, second };
  }

  it('a descriptor whose checksum fails → E_DESCRIPTOR_CORRUPT, worktree and head untouched, no fork made', () => {
    const { repo, first } = setup();
    const file = path.join(repo.ctl, 'descriptors', `${first}.json`);
    const d = JSON.parse(fs.readFileSync(file, 'utf8'));
    fs.writeFileSync(file, JSON.stringify({ ...d, note: 'edited by hand' }));
    const before = treeState(repo.main);
    const cfg = worktreeConfig(repo);
    expectError(run(['restore', first, '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
    expect(treeState(repo.main)).toEqual(before);
    expect(worktreeConfig(repo)).toEqual(cfg);
    expectError(run(['worktree', 'fork', first, 'side', '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
    expect(fs.existsSync(path.join(repo.root, 'worktrees', 'side'))).toBe(false);
  });

  it('a snapshot without its .READY marker → E_PARTIAL_SNAPSHOT, nothing written', () => {
    const { repo, first } = setup();
    fs.rmSync(path.join(repo.ctl, 'snapshots', first, '.READY'));
    const before = treeState(repo.main);
    const cfg = worktreeConfig(repo);
    expectError(run(['restore', first, '--json'], repo.main), 'E_PARTIAL_SNAPSHOT');
    expect(treeState(repo.main)).toEqual(before);
    expect(worktreeConfig(repo)).toEqual(cfg);
    expectError(run(['worktree', 'fork', first, 'side', '--json'], repo.main), 'E_PARTIAL_SNAPSHOT');
    expect(fs.existsSync(path.join(repo.root, 'worktrees', 'side'))).toBe(false);
  });
});

describe("the reference's .READY copy in a worktree root", () => {
  it('is never snapshotted, is not a change, and a snapshot beside it succeeds', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'one\n', '.READY': '{}' });
    const id = snapshot(repo, 'one');
    expect(fs.existsSync(path.join(repo.ctl, 'snapshots', id, 'a.txt'))).toBe(true);
    // The snapshot's own marker is ours, not the worktree's copy.
    expect(fs.readFileSync(path.join(repo.ctl, 'snapshots', id, '.READY'), 'utf8')).toContain(id);
    expect(run(['status', '--json'], repo.main).json()).toMatchObject({ clean: true });
    expect(run(['verify', '--all', '--json'], repo.main).code).toBe(0);
  });

  it('never lands in a worktree restored or forked by us', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'one\n' });
    const id = snapshot(repo, 'one');
    fs.writeFileSync(path.join(repo.main, '.READY'), '{"snapshot_id":"x"}');
    expect(run(['restore', id, '--json'], repo.main).code).toBe(0);
    expect(fs.existsSync(path.join(repo.main, 'a.txt'))).toBe(true);
    expect(fs.existsSync(path.join(repo.main, '.READY'))).toBe(false);
    expect(run(['worktree', 'fork', id, 'side', '--json'], repo.main).code).toBe(0);
    expect(fs.readdirSync(path.join(repo.root, 'worktrees', 'side'))).toEqual(['a.txt']);
  });
});

describe('legacy checksums (made before format v1 was fixed) are accepted with a warning', () => {
  it('verify passes, warns, and restore works; an edited legacy descriptor is still corrupt', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'one\n' });
    const id = snapshot(repo, 'one');
    const file = path.join(repo.ctl, 'descriptors', `${id}.json`);
    const d = JSON.parse(fs.readFileSync(file, 'utf8')) as Descriptor;
    const legacy = { ...d, descriptor_checksum: legacyDescriptorChecksum(d) };
    fs.writeFileSync(file, serializeDescriptor(legacy));
    const ready = path.join(repo.ctl, 'snapshots', id, '.READY');
    fs.chmodSync(ready, 0o644);
    fs.writeFileSync(ready, JSON.stringify({ ...JSON.parse(fs.readFileSync(ready, 'utf8')), descriptor_checksum: legacy.descriptor_checksum }));
    const v = run(['verify', '--all', '--json'], repo.main);
    expect(v.code, v.stdout).toBe(0);
    expect(v.json().results[0].warnings[0]).toContain('legacy rule');
    expect(run(['verify', '--all'], repo.main).stdout).toContain('warning');
    fs.writeFileSync(path.join(repo.main, 'a.txt'), 'two\n');
    expect(run(['restore', id, '--json'], repo.main).code).toBe(0);
    fs.writeFileSync(file, serializeDescriptor({ ...legacy, note: 'edited' }));
    expect(run(['verify', '--all', '--json'], repo.main).json().results[0].checksum_valid).toBe(false);
  });
});

describe("human output keeps the reference's phrases, detail after them", () => {
  it('restore, worktree fork and create, verify and gc plan', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'one\n' });
    const first = snapshot(repo, 'first');
    fs.writeFileSync(path.join(repo.main, 'a.txt'), 'two\n');
    snapshot(repo, 'second');
    const restore = run(['restore', first], repo.main).stdout.split('\n');
    expect(restore.slice(0, 4)).toEqual([`Restored to snapshot ${first}`, 'Worktree is now in DETACHED state.', 'To continue working from here: jvs worktree fork <name>', 'To return to latest: jvs restore HEAD']);
    expect(run(['restore', 'HEAD'], repo.main).stdout).toContain('Worktree is now at HEAD state.');
    const fork = run(['worktree', 'fork', first, 'side'], repo.main).stdout.split('\n');
    expect(fork.slice(0, 3)).toEqual([`Created worktree 'side' from snapshot ${first}`, `Path: ${path.join(repo.root, 'worktrees', 'side')}`, 'Worktree is at HEAD state - you can create snapshots.']);
    expect(run(['worktree', 'create', 'blank'], repo.main).stdout).toContain(`Created worktree 'blank' at ${path.join(repo.root, 'worktrees', 'blank')}`);
    expect(run(['verify', '--all'], repo.main).stdout).toContain(`${first}  OK`);
    const plan = run(['gc', 'plan'], repo.main).stdout.split('\n');
    expect(plan[0]).toMatch(/^GC Plan: \S+$/);
    expect(plan[1]).toMatch(/^ {2}Protected: \d+ snapshots? /);
    expect(plan[2]).toMatch(/^ {2}To delete: \d+ snapshots?$/);
    expect(plan.some((l) => /^ {2}Estimated reclaim: ~\d+ MB/.test(l))).toBe(true);
  });

  it('verify names a damaged snapshot TAMPERED, as the reference does', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'one\n' });
    const id = snapshot(repo, 'first');
    const f = path.join(repo.ctl, 'snapshots', id, 'a.txt');
    fs.chmodSync(f, 0o644);
    fs.writeFileSync(f, 'tampered\n');
    const v = run(['verify', '--all'], repo.main);
    expect(v.code).not.toBe(0);
    expect(v.stdout).toContain(`${id}  TAMPERED: payload root hash does not match`);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFiles } from '../helpers/tmp.js';
import { expectError, run, snapshot } from '../integrity/support.js';
import { arena, plant } from './ctlplaneHelpers.js';

/**
 * Issue 14, item 1: names read from the control plane are validated before use.
 * A user who can write `.jvs/` plants intents, configs, descriptors, pins and gc plans
 * whose names climb out of the repository; `jvs doctor --repair-runtime` (and gc) must
 * report them as damage naming the file, act on none of them, touch nothing outside
 * the repository, and never call the repository healthy.
 */

const T = '2026-12-02T14:00:00Z';

/** doctor --repair-runtime in JSON mode: refused with `cls`, the planted file named, nothing outside changed. */
function doctorRefuses(a: ReturnType<typeof arena>, file: string, cls = 'E_DESCRIPTOR_CORRUPT') {
  const before = a.outsideHash();
  const r = run(['doctor', '--repair-runtime', '--json'], a.repo.main);
  expect(a.outsideHash(), 'doctor changed something outside the repository').toBe(before);
  expect(r.code, r.stdout).not.toBe(0);
  const doc = r.json();
  expect(doc.healthy).toBe(false);
  const f = doc.findings.find((x: { path?: string }) => x.path === file);
  expect(f, JSON.stringify(doc.findings)).toBeTruthy();
  expect(f.error_class).toBe(cls);
  expect(f.repaired).not.toBe(true);
  // Human mode says the same and never "healthy".
  const h = run(['doctor', '--repair-runtime'], a.repo.main);
  expect(h.stdout + h.stderr).not.toContain('Repository is healthy.');
  expect(h.code).not.toBe(0);
  expect(a.outsideHash()).toBe(before);
  return doc;
}

describe('hostile intents: doctor reports them and acts on none', () => {
  it('a restore intent with worktree_name "../../victim" deletes and writes nothing outside (E_DESCRIPTOR_CORRUPT)', () => {
    const a = arena();
    writeFiles(a.repo.main, { 'a.txt': 'A' });
    const s1 = snapshot(a.repo, 'one');
    for (const wt of ['../../victim', '../../../victim']) {
      const file = path.join(a.repo.ctl, 'intents/restore-1796221000000-deadbeef.json');
      plant(file, { id: 'restore-1796221000000-deadbeef', operation: 'restore', worktree_name: wt, snapshot_id: s1, started_at: T, pid: 999999 });
      doctorRefuses(a, file);
      // Left for a person to inspect: the evidence is not deleted.
      expect(fs.existsSync(file)).toBe(true);
      fs.rmSync(file);
    }
    expect(fs.readFileSync(path.join(a.base, 'victim/precious.txt'), 'utf8')).toBe('precious');
  });

  it('a snapshot intent with snapshot_id "../../../victim3" removes no victim3.tmp outside', () => {
    const a = arena();
    const file = path.join(a.repo.ctl, 'intents/1796221000000-aaaaaaaa.json');
    plant(file, { id: '1796221000000-aaaaaaaa', operation: 'snapshot', worktree_name: 'main', snapshot_id: '../../../victim3', started_at: T, pid: 999999 });
    doctorRefuses(a, file);
    expect(fs.existsSync(path.join(a.base, 'victim3.tmp/keep.txt'))).toBe(true);
  });

  it('an intent id climbing out, or naming another intent file, is refused', () => {
    const a = arena();
    writeFiles(a.repo.main, { 'a.txt': 'A' });
    const s1 = snapshot(a.repo, 'one');
    const other = path.join(a.repo.ctl, 'intents/restore-1796221000000-00000001.json');
    const cases: Array<[string, object]> = [
      ['x.json', { id: '../../../victim3', operation: 'snapshot', worktree_name: 'main', started_at: T, pid: 1 }],
      // Completing this one would remove `other`, someone else's record.
      ['restore-1796221000000-00000002.json', { id: 'restore-1796221000000-00000001', operation: 'restore', worktree_name: 'main', snapshot_id: s1, started_at: T, pid: 1 }],
    ];
    for (const [name, doc] of cases) {
      const file = path.join(a.repo.ctl, 'intents', name);
      plant(file, doc);
      doctorRefuses(a, file);
      fs.rmSync(file);
    }
    expect(fs.existsSync(other)).toBe(false);
  });

  it('a fork intent whose stage points outside .jvs/tmp: the outside folder survives', () => {
    const a = arena();
    const file = path.join(a.repo.ctl, 'intents/fork-1796221000000-deadbeef.json');
    plant(file, { id: 'fork-1796221000000-deadbeef', operation: 'fork', worktree_name: 'feat', started_at: T, pid: 1, details: { stage: path.join(a.base, 'victim') } });
    doctorRefuses(a, file);
    expect(fs.existsSync(path.join(a.base, 'victim/precious.txt'))).toBe(true);
  });

  it('a gc_run intent with a climbing plan_id is refused; gc plan refuses to guess what it protects', () => {
    const a = arena();
    writeFiles(a.repo.main, { 'a.txt': 'A' });
    snapshot(a.repo, 'one');
    const file = path.join(a.repo.ctl, 'intents/gc-x.json');
    plant(file, { id: 'gc-x', operation: 'gc_run', started_at: T, pid: 1, details: { plan_id: '../../../victim/precious' } });
    doctorRefuses(a, file);
    const before = a.outsideHash();
    expectError(run(['gc', 'plan', '--json'], a.repo.main), 'E_DESCRIPTOR_CORRUPT');
    expect(a.outsideHash()).toBe(before);
  });
});

describe('hostile names in other control files', () => {
  it('a descriptor whose worktree_name climbs out is corrupt; doctor writes no worktree config outside', () => {
    const a = arena({ 'victim/config.json': '{"name":"../../../victim","created_at":"2026-12-02T14:00:00Z"}' });
    writeFiles(a.repo.main, { 'a.txt': 'A' });
    const s1 = snapshot(a.repo, 'one');
    writeFiles(a.repo.main, { 'a.txt': 'B' });
    const s2 = snapshot(a.repo, 'two');
    const desc = path.join(a.repo.ctl, 'descriptors', `${s2}.json`);
    plant(desc, fs.readFileSync(desc, 'utf8').replace('"worktree_name":"main"', '"worktree_name":"../../../victim"'));
    // A leftover snapshot intent would make doctor settle the head of the descriptor's worktree.
    plant(path.join(a.repo.ctl, 'intents', `${s2}.json`), { id: s2, operation: 'snapshot', worktree_name: 'main', snapshot_id: s2, started_at: T, pid: 1 });
    const cfg = path.join(a.repo.ctl, 'worktrees/main/config.json');
    plant(cfg, { name: 'main', created_at: T, head_snapshot_id: s1, latest_snapshot_id: s1 });
    doctorRefuses(a, desc);
    expectError(run(['verify', s2, '--json'], a.repo.main), 'E_DESCRIPTOR_CORRUPT');
  });

  it('a folder in .jvs/worktrees whose name JVS never writes is reported, not used', () => {
    const a = arena();
    const odd = path.join(a.repo.ctl, 'worktrees', 'a b');
    plant(path.join(odd, 'config.json'), { name: 'a b', created_at: T });
    doctorRefuses(a, odd);
    const list = run(['worktree', 'list', '--json'], a.repo.main);
    expect(JSON.stringify(list.json())).not.toContain('a b');
  });

  it('a pin whose file name and snapshot_id disagree is damage (E_DESCRIPTOR_CORRUPT)', () => {
    const a = arena();
    writeFiles(a.repo.main, { 'a.txt': 'A' });
    const s1 = snapshot(a.repo, 'one');
    const file = path.join(a.repo.ctl, 'pins/1796221000000-aaaaaaaa.json');
    plant(file, { snapshot_id: s1, pinned_at: T });
    doctorRefuses(a, file);
  });

  it('a gc plan listing a climbing id is refused before anything is deleted (E_GC_PLAN_MISMATCH)', () => {
    const a = arena();
    writeFiles(a.repo.main, { 'a.txt': 'A' });
    const s1 = snapshot(a.repo, 'one');
    const planId = '0b6c1c3e-4f0e-4d5a-9b7e-2f1a3c4d5e6f';
    plant(path.join(a.repo.ctl, 'gc', `${planId}.json`), { plan_id: planId, created_at: T, protected_set: [s1], to_delete: ['../../../victim'], candidate_count: 1 });
    const before = a.outsideHash();
    expectError(run(['gc', 'run', '--plan-id', planId, '--json'], a.repo.main), 'E_GC_PLAN_MISMATCH');
    expect(a.outsideHash()).toBe(before);
    expect(fs.existsSync(path.join(a.repo.ctl, 'snapshots', s1))).toBe(true);
  });
});

describe('control folders swapped for links', () => {
  for (const dir of ['tmp', 'snapshots', 'intents']) {
    it(`.jvs/${dir} replaced by a link to an outside folder: doctor repairs nothing and deletes nothing there (E_PATH_ESCAPE)`, () => {
      const a = arena({
        // What clean_tmp / clean_intents would otherwise take for leftovers.
        'decoy/gc-1796221000000-aaaaaaaa/x': 'x',
        'decoy/1796221000000-aaaaaaaa.tmp/y': 'y',
        'decoy/1796221000000-bbbbbbbb.json': '{not json',
      });
      const real = path.join(a.repo.ctl, dir);
      fs.rmSync(real, { recursive: true, force: true });
      fs.symlinkSync(path.join(a.base, 'decoy'), real);
      doctorRefuses(a, real, 'E_PATH_ESCAPE');
      expect(fs.readdirSync(path.join(a.base, 'decoy')).sort()).toEqual(['1796221000000-aaaaaaaa.tmp', '1796221000000-bbbbbbbb.json', 'gc-1796221000000-aaaaaaaa']);
    });
  }

  it('.jvs/locks replaced by a link: no command writes or removes a lock file there (E_PATH_ESCAPE)', () => {
    const a = arena({ 'decoy/repo.owner.json': 'victim data', 'decoy/repo': 'victim data' });
    writeFiles(a.repo.main, { 'a.txt': 'A' });
    const locks = path.join(a.repo.ctl, 'locks');
    fs.rmSync(locks, { recursive: true, force: true });
    fs.symlinkSync(path.join(a.base, 'decoy'), locks);
    const before = a.outsideHash();
    expectError(run(['snapshot', 'x', '--json'], a.repo.main), 'E_PATH_ESCAPE');
    expectError(run(['doctor', '--repair-runtime', '--json'], a.repo.main), 'E_PATH_ESCAPE');
    expect(a.outsideHash()).toBe(before);
  });
});

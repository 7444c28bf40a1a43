import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jvsOk } from '../helpers/cli.js';
import { writeFiles } from '../helpers/tmp.js';
import { JVS_BIN, descriptorIds, faultSteps, newRepo, run, snapshot, treeState, worktreeConfig, type Repo } from './support.js';

/**
 * Kill -9 at every named step of snapshot, restore, fork, gc run and audit append
 * (JVS_FAULT=<step>), then `doctor --strict --repair-runtime` and `verify --all`:
 * no published snapshot is lost, the worktree holds the old or the new state (never
 * a mix), and nothing half-made stays behind.
 */

const SNAPSHOT_STEPS = ['snapshot.1-intent', 'materialize.walked', 'snapshot.2-materialize', 'snapshot.3-fsync', 'snapshot.5-descriptor-tmp', 'snapshot.6-ready', 'snapshot.7-publish-dir', 'snapshot.8-publish-descriptor', 'snapshot.9-head', 'snapshot.10-intent-done'];
const RESTORE_STEPS = ['restore.1-intent', 'apply.staged', 'restore.2-applied', 'restore.3-head'];
const FORK_STEPS = ['fork.1-intent', 'fork.2-materialize', 'fork.3-publish', 'fork.4-config'];
const GC_STEPS = ['gc.1-intent', 'gc.2-tombstone', 'gc.3-descriptor', 'gc.4-payload-moved', 'gc.5-payload-removed', 'gc.6-intent-done'];
const AUDIT_STEPS = ['audit.append'];
/** Steps of `doctor --repair-runtime` itself (it also passes the gc and audit steps while it repairs). */
const DOCTOR_STEPS = ['doctor.1-repaired'];

function crash(args: string[], cwd: string, step: string) {
  const r = run(args, cwd, { JVS_FAULT: step });
  expect(r.signal, `${step} did not kill jvs ${args.join(' ')}: code ${r.code}\n${r.stdout}\n${r.stderr}`).toBe('SIGKILL');
}

/** doctor must leave a repository where verify --all passes and no runtime state is left. */
function repairAndVerify(repo: Repo) {
  const d = run(['doctor', '--strict', '--repair-runtime', '--json'], repo.main);
  expect(d.code, d.stdout + d.stderr).toBe(0);
  expect(d.json().healthy).toBe(true);
  const again = run(['doctor', '--strict'], repo.main);
  expect(again.stdout).toContain('Repository is healthy.');
  const v = run(['verify', '--all', '--json'], repo.main);
  expect(v.code, v.stdout + v.stderr).toBe(0);
  expect(fs.readdirSync(path.join(repo.ctl, 'intents'))).toEqual([]);
  expect(fs.readdirSync(path.join(repo.ctl, 'tmp')).filter((n) => !n.startsWith('.probe-'))).toEqual([]);
  expect(fs.readdirSync(path.join(repo.ctl, 'snapshots')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  expect(fs.readdirSync(path.join(repo.ctl, 'descriptors')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  // Every snapshot folder is published (has its descriptor) and vice versa.
  expect(fs.readdirSync(path.join(repo.ctl, 'snapshots')).sort()).toEqual(descriptorIds(repo));
  return d.json();
}

function snapshotDirs(repo: Repo): string[] {
  return fs.readdirSync(path.join(repo.ctl, 'snapshots')).filter((n) => !n.endsWith('.tmp')).sort();
}

describe('crash at every fault point, then doctor', () => {
  it('the suite covers every faultPoint step in the sources', () => {
    const covered = new Set([...SNAPSHOT_STEPS, ...RESTORE_STEPS, ...FORK_STEPS, ...GC_STEPS, ...AUDIT_STEPS, ...DOCTOR_STEPS]);
    const missing = faultSteps().filter((s) => !covered.has(s));
    expect(missing, 'add these steps to test/integrity/crash.test.ts').toEqual([]);
  });

  for (const step of SNAPSHOT_STEPS) {
    it(`snapshot killed at ${step}: earlier snapshots kept, new one complete or absent, worktree untouched`, () => {
      const repo = newRepo();
      writeFiles(repo.main, { 'a.txt': 'A', 'keep/k.txt': 'k', 'gone.txt': 'bye' });
      const s1 = snapshot(repo, 'one');
      writeFiles(repo.main, { 'a.txt': 'B', 'new/n.txt': 'n' });
      fs.rmSync(path.join(repo.main, 'gone.txt'));
      const stateB = treeState(repo.main);
      crash(['snapshot', 'two'], repo.main, step);
      const publishedBeforeRepair = snapshotDirs(repo);
      repairAndVerify(repo);
      const ids = descriptorIds(repo);
      for (const id of publishedBeforeRepair) expect(ids, `published ${id} lost`).toContain(id);
      expect(ids).toContain(s1);
      expect(treeState(repo.main)).toEqual(stateB);
      const cfg = worktreeConfig(repo);
      const fresh = ids.filter((id) => id !== s1);
      expect(fresh.length).toBeLessThanOrEqual(1);
      if (fresh.length) {
        // A published snapshot is the head, and holds state B exactly.
        expect(cfg.head_snapshot_id).toBe(fresh[0]);
        expect(treeState(path.join(repo.ctl, 'snapshots', fresh[0]!), (r) => r === '.READY')).toEqual(stateB);
      } else {
        expect(cfg.head_snapshot_id).toBe(s1);
      }
      // History stays a chain: the next snapshot continues from the head.
      const next = jvsOk(['snapshot', 'three', '--json'], { cwd: repo.main }).json();
      expect(next.parent_id).toBe(cfg.head_snapshot_id);
    });
  }

  for (const step of RESTORE_STEPS) {
    it(`restore killed at ${step}: worktree ends wholly old or wholly new, head agrees`, () => {
      const repo = newRepo();
      writeFiles(repo.main, { 'a.txt': 'A', 'dir/x': 'x1', 'only-a': 'a' });
      const s1 = snapshot(repo, 'one');
      const stateA = treeState(repo.main);
      fs.rmSync(path.join(repo.main, 'only-a'));
      writeFiles(repo.main, { 'a.txt': 'B', 'dir/x': 'x2', 'dir/y': 'y', 'only-b/z': 'z' });
      const s2 = snapshot(repo, 'two');
      const stateB = treeState(repo.main);
      crash(['restore', s1], repo.main, step);
      repairAndVerify(repo);
      expect(descriptorIds(repo)).toEqual([s1, s2]);
      const now = treeState(repo.main);
      const cfg = worktreeConfig(repo);
      if (JSON.stringify(now) === JSON.stringify(stateA)) expect(cfg.head_snapshot_id).toBe(s1);
      else {
        expect(now).toEqual(stateB);
        expect(cfg.head_snapshot_id).toBe(s2);
      }
      expect(cfg.latest_snapshot_id).toBe(s2);
    });
  }

  for (const step of FORK_STEPS) {
    it(`fork killed at ${step}: the new worktree exists completely or not at all`, () => {
      const repo = newRepo();
      writeFiles(repo.main, { 'a.txt': 'A', 'd/e/f': 'deep' });
      const s1 = snapshot(repo, 'one');
      const stateA = treeState(repo.main);
      crash(['worktree', 'fork', s1, 'feat'], repo.main, step);
      repairAndVerify(repo);
      const cfgFile = path.join(repo.ctl, 'worktrees/feat/config.json');
      const payload = path.join(repo.root, 'worktrees/feat');
      if (fs.existsSync(cfgFile)) {
        expect(worktreeConfig(repo, 'feat')).toMatchObject({ head_snapshot_id: s1, latest_snapshot_id: s1 });
        expect(treeState(payload)).toEqual(stateA);
      } else {
        expect(fs.existsSync(payload)).toBe(false);
        // The name is free again.
        jvsOk(['worktree', 'fork', s1, 'feat'], { cwd: repo.main });
        expect(treeState(payload)).toEqual(stateA);
      }
      expect(treeState(repo.main)).toEqual(stateA);
    });
  }

  for (const step of GC_STEPS) {
    it(`gc run killed at ${step}: each planned snapshot is wholly there or wholly gone, protected ones untouched, re-run is idempotent`, () => {
      const repo = newRepo();
      writeFiles(repo.main, { 'a.txt': 'A' });
      const s1 = snapshot(repo, 'one');
      jvsOk(['worktree', 'fork', s1, 'old'], { cwd: repo.main });
      const oldDir = path.join(repo.root, 'worktrees/old');
      writeFiles(oldDir, { 'o.txt': 'o1' });
      jvsOk(['snapshot', 'o1'], { cwd: oldDir });
      writeFiles(oldDir, { 'o.txt': 'o2' });
      jvsOk(['snapshot', 'o2'], { cwd: oldDir });
      jvsOk(['worktree', 'remove', 'old', '--force'], { cwd: repo.main });
      const plan = jvsOk(['gc', 'plan', '--json'], { cwd: repo.main }).json();
      expect(plan.to_delete).toHaveLength(2);
      crash(['gc', 'run', '--plan-id', plan.plan_id], repo.main, step);
      const dirs = snapshotDirs(repo);
      const ids = descriptorIds(repo);
      for (const id of plan.to_delete) {
        // Never a descriptor without its payload: a published snapshot is always whole.
        if (ids.includes(id)) expect(dirs).toContain(id);
      }
      repairAndVerify(repo);
      expect(descriptorIds(repo)).toEqual([s1]);
      const again = run(['gc', 'run', '--plan-id', plan.plan_id], repo.main);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain('GC completed successfully.');
      for (const id of plan.to_delete) {
        expect(JSON.parse(fs.readFileSync(path.join(repo.ctl, 'gc/tombstones', `${id}.json`), 'utf8'))).toMatchObject({ snapshot_id: id, gc_state: 'committed' });
      }
    });
  }

  it('snapshot killed at audit.append: the snapshot stays published and the audit log gets a recovered record', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const s1 = snapshot(repo, 'one');
    writeFiles(repo.main, { 'a.txt': 'B' });
    crash(['snapshot', 'two'], repo.main, 'audit.append');
    repairAndVerify(repo);
    const ids = descriptorIds(repo);
    expect(ids).toHaveLength(2);
    const s2 = ids.find((id) => id !== s1)!;
    expect(worktreeConfig(repo).head_snapshot_id).toBe(s2);
    const records = fs.readFileSync(path.join(repo.ctl, 'audit/audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.some((r) => r.event_type === 'snapshot_create' && r.snapshot_id === s2 && r.details?.recovered === true)).toBe(true);
  });

  it('restore killed at audit.append: the worktree is wholly restored and verify passes', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const s1 = snapshot(repo, 'one');
    const stateA = treeState(repo.main);
    writeFiles(repo.main, { 'a.txt': 'B', 'b.txt': 'b' });
    snapshot(repo, 'two');
    crash(['restore', s1], repo.main, 'audit.append');
    repairAndVerify(repo);
    expect(treeState(repo.main)).toEqual(stateA);
    expect(worktreeConfig(repo).head_snapshot_id).toBe(s1);
  });

  it('restore killed from outside in the middle of applying (worktree visibly half old, half new) ends wholly new after doctor', async () => {
    const repo = newRepo();
    const files: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) files[`d${String(i % 10)}/f${String(i).padStart(4, '0')}`] = `A${i}`.repeat(40);
    writeFiles(repo.main, files);
    const s1 = snapshot(repo, 'A');
    const stateA = treeState(repo.main);
    for (const k of Object.keys(files)) files[k] = `B${k}`.repeat(30);
    writeFiles(repo.main, files);
    const s2 = snapshot(repo, 'B');
    const probe = path.join(repo.main, 'd0/f0000');
    const child = spawn(process.execPath, [JVS_BIN, 'restore', s1], { cwd: repo.main, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('close', (_c, sig) => r(sig)));
    // Kill as soon as the first file shows state A: the rest of the tree is still B.
    let killedMidway = false;
    for (;;) {
      let text = '';
      try { text = fs.readFileSync(probe, 'utf8'); } catch { /* being replaced */ }
      if (text.startsWith('A0')) { child.kill('SIGKILL'); killedMidway = true; break; }
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 1));
    }
    await exited;
    if (killedMidway) {
      const now = treeState(repo.main);
      expect(now).not.toEqual(stateA); // really a mix before doctor
      expect(fs.readdirSync(path.join(repo.ctl, 'intents'))).toHaveLength(1);
    }
    repairAndVerify(repo);
    expect(treeState(repo.main)).toEqual(stateA);
    expect(worktreeConfig(repo)).toMatchObject({ head_snapshot_id: s1, latest_snapshot_id: s2 });
  });
});

/**
 * Kill -9 during `doctor --repair-runtime` itself: an operation is interrupted, the
 * doctor that repairs it is killed in turn (after its first repair, while appending
 * its audit record, or inside a gc run it resumes), and a second doctor must still
 * end in a healthy repository with nothing lost.
 */
describe('crash during doctor --repair-runtime, then doctor again', () => {
  interface Scenario {
    /** Sets up a repository with one interrupted operation; returns a check run after the final repair. */
    setup(repo: Repo): (repo: Repo) => void;
    doctorSteps: string[];
  }
  const scenarios: Record<string, Scenario> = {
    'snapshot killed at snapshot.5-descriptor-tmp': {
      doctorSteps: [...DOCTOR_STEPS, 'audit.append'],
      setup(repo) {
        writeFiles(repo.main, { 'a.txt': 'A' });
        const s1 = snapshot(repo, 'one');
        writeFiles(repo.main, { 'a.txt': 'B', 'n/b.txt': 'b' });
        const stateB = treeState(repo.main);
        crash(['snapshot', 'two'], repo.main, 'snapshot.5-descriptor-tmp');
        return (r) => {
          expect(descriptorIds(r)).toEqual([s1]);
          expect(worktreeConfig(r).head_snapshot_id).toBe(s1);
          expect(treeState(r.main)).toEqual(stateB);
        };
      },
    },
    'snapshot killed at snapshot.8-publish-descriptor': {
      doctorSteps: [...DOCTOR_STEPS, 'audit.append'],
      setup(repo) {
        writeFiles(repo.main, { 'a.txt': 'A' });
        const s1 = snapshot(repo, 'one');
        writeFiles(repo.main, { 'a.txt': 'B' });
        const stateB = treeState(repo.main);
        crash(['snapshot', 'two'], repo.main, 'snapshot.8-publish-descriptor');
        const published = snapshotDirs(repo);
        return (r) => {
          const ids = descriptorIds(r);
          for (const id of [s1, ...published]) expect(ids, `published ${id} lost`).toContain(id);
          expect(ids).toHaveLength(2);
          expect(worktreeConfig(r).head_snapshot_id).toBe(ids.find((id) => id !== s1));
          expect(treeState(r.main)).toEqual(stateB);
        };
      },
    },
    'restore killed at restore.1-intent': {
      doctorSteps: [...DOCTOR_STEPS, 'audit.append'],
      setup(repo) {
        writeFiles(repo.main, { 'a.txt': 'A', 'only-a': 'a' });
        const s1 = snapshot(repo, 'one');
        const stateA = treeState(repo.main);
        fs.rmSync(path.join(repo.main, 'only-a'));
        writeFiles(repo.main, { 'a.txt': 'B', 'd/y': 'y' });
        const s2 = snapshot(repo, 'two');
        const stateB = treeState(repo.main);
        crash(['restore', s1], repo.main, 'restore.1-intent');
        return (r) => {
          expect(descriptorIds(r)).toEqual([s1, s2]);
          const now = treeState(r.main);
          const cfg = worktreeConfig(r);
          if (JSON.stringify(now) === JSON.stringify(stateA)) expect(cfg.head_snapshot_id).toBe(s1);
          else {
            expect(now).toEqual(stateB);
            expect(cfg.head_snapshot_id).toBe(s2);
          }
        };
      },
    },
    'fork killed at fork.3-publish': {
      doctorSteps: [...DOCTOR_STEPS, 'audit.append'],
      setup(repo) {
        writeFiles(repo.main, { 'a.txt': 'A' });
        const s1 = snapshot(repo, 'one');
        const stateA = treeState(repo.main);
        crash(['worktree', 'fork', s1, 'feat'], repo.main, 'fork.3-publish');
        return (r) => {
          const payload = path.join(r.root, 'worktrees/feat');
          if (fs.existsSync(path.join(r.ctl, 'worktrees/feat/config.json'))) expect(treeState(payload)).toEqual(stateA);
          else expect(fs.existsSync(payload)).toBe(false);
          expect(descriptorIds(r)).toEqual([s1]);
        };
      },
    },
    'gc run killed at gc.2-tombstone': {
      doctorSteps: [...DOCTOR_STEPS, 'audit.append', 'gc.3-descriptor', 'gc.4-payload-moved', 'gc.5-payload-removed'],
      setup(repo) {
        writeFiles(repo.main, { 'a.txt': 'A' });
        const s1 = snapshot(repo, 'one');
        jvsOk(['worktree', 'fork', s1, 'old'], { cwd: repo.main });
        const oldDir = path.join(repo.root, 'worktrees/old');
        writeFiles(oldDir, { 'o.txt': 'o1' });
        jvsOk(['snapshot', 'o1'], { cwd: oldDir });
        writeFiles(oldDir, { 'o.txt': 'o2' });
        jvsOk(['snapshot', 'o2'], { cwd: oldDir });
        jvsOk(['worktree', 'remove', 'old', '--force'], { cwd: repo.main });
        const plan = jvsOk(['gc', 'plan', '--json'], { cwd: repo.main }).json();
        expect(plan.to_delete).toHaveLength(2);
        const stateMain = treeState(repo.main);
        crash(['gc', 'run', '--plan-id', plan.plan_id], repo.main, 'gc.2-tombstone');
        return (r) => {
          expect(descriptorIds(r)).toEqual([s1]);
          expect(treeState(r.main)).toEqual(stateMain);
        };
      },
    },
  };

  for (const [what, sc] of Object.entries(scenarios)) {
    for (const step of sc.doctorSteps) {
      it(`${what}; doctor killed at ${step}; a second doctor repairs it all and verify --all passes`, () => {
        const repo = newRepo();
        const check = sc.setup(repo);
        crash(['doctor', '--strict', '--repair-runtime'], repo.main, step);
        repairAndVerify(repo);
        check(repo);
      });
    }
  }

  it('doctor killed from outside while it rolls a 3000-file restore forward: the next doctor finishes it', async () => {
    const repo = newRepo();
    const files: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) files[`d${String(i % 10)}/f${String(i).padStart(4, '0')}`] = `A${i}`.repeat(40);
    writeFiles(repo.main, files);
    const s1 = snapshot(repo, 'A');
    const stateA = treeState(repo.main);
    for (const k of Object.keys(files)) files[k] = `B${k}`.repeat(30);
    writeFiles(repo.main, files);
    const s2 = snapshot(repo, 'B');
    crash(['restore', s1], repo.main, 'restore.1-intent');
    const probe = path.join(repo.main, 'd0/f0000');
    const child = spawn(process.execPath, [JVS_BIN, 'doctor', '--repair-runtime'], { cwd: repo.main, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('close', (_c, sig) => r(sig)));
    let killedMidway = false;
    for (;;) {
      let text = '';
      try { text = fs.readFileSync(probe, 'utf8'); } catch { /* being replaced */ }
      if (text.startsWith('A0')) { child.kill('SIGKILL'); killedMidway = true; break; }
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 1));
    }
    await exited;
    if (killedMidway) expect(fs.readdirSync(path.join(repo.ctl, 'intents'))).toHaveLength(1);
    repairAndVerify(repo);
    expect(treeState(repo.main)).toEqual(stateA);
    expect(worktreeConfig(repo)).toMatchObject({ head_snapshot_id: s1, latest_snapshot_id: s2 });
    expect(descriptorIds(repo)).toEqual([s1, s2]);
  });
});

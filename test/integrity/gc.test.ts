import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jvsOk } from '../helpers/cli.js';
import { writeFiles } from '../helpers/tmp.js';
import { descriptorIds, expectError, newRepo, run, snapshot, type Repo } from './support.js';

/** main has s1 → s2; a removed worktree 'old' left o1 → o2 (children of s1) unprotected. */
function repoWithGarbage(): { repo: Repo; s1: string; s2: string; o1: string; o2: string } {
  const repo = newRepo();
  writeFiles(repo.main, { 'a.txt': 'A', 'big.bin': 'x'.repeat(10_000) });
  const s1 = snapshot(repo, 'one');
  jvsOk(['worktree', 'fork', s1, 'old'], { cwd: repo.main });
  const oldDir = path.join(repo.root, 'worktrees/old');
  writeFiles(oldDir, { 'o.txt': 'o1', 'own.bin': 'y'.repeat(5_000) });
  const o1 = jvsOk(['snapshot', 'o1', '--json'], { cwd: oldDir }).json().snapshot_id;
  writeFiles(oldDir, { 'o.txt': 'o2' });
  const o2 = jvsOk(['snapshot', 'o2', '--json'], { cwd: oldDir }).json().snapshot_id;
  jvsOk(['worktree', 'remove', 'old', '--force'], { cwd: repo.main });
  writeFiles(repo.main, { 'a.txt': 'A2' });
  const s2 = snapshot(repo, 'two');
  return { repo, s1, s2, o1, o2 };
}

/** Bytes the files below `dir` occupy on disk: each inode once (hard links share), by st_blocks. */
function usedBytes(dir: string): number {
  const seen = new Set<string>();
  let bytes = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = fs.lstatSync(p);
      if (!seen.has(`${st.dev}:${st.ino}`)) {
        seen.add(`${st.dev}:${st.ino}`);
        bytes += st.blocks * 512;
      }
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return bytes;
}

function plan(repo: Repo, args: string[] = []) {
  const r = run(['gc', 'plan', '--json', ...args], repo.main);
  expect(r.code, r.stderr + r.stdout).toBe(0);
  return r.json();
}

describe('gc: plan, run, pins, retention', () => {
  it('plan protects heads and their lineage, lists the rest, and has the design fields', () => {
    const { repo, s1, s2, o1, o2 } = repoWithGarbage();
    const p = plan(repo);
    for (const k of ['plan_id', 'created_at', 'protected_set', 'protected_by_pin', 'protected_by_lineage', 'protected_by_retention', 'candidate_count', 'to_delete', 'deletable_bytes_estimate', 'retention_policy']) {
      expect(p).toHaveProperty(k);
    }
    expect(p.protected_set).toEqual([s1, s2]);
    expect(p.protected_by_lineage).toBe(1); // s1, as s2's parent
    expect(p.to_delete).toEqual([o1, o2]);
    expect(p.candidate_count).toBe(2);
    // own.bin (5,000 bytes) lives only in o1/o2 (shared by hard link); o.txt versions too.
    expect(p.deletable_bytes_estimate).toBeGreaterThanOrEqual(5_000);
    expect(p.deletable_bytes_estimate).toBeLessThan(10_000);
    const stored = JSON.parse(fs.readFileSync(path.join(repo.ctl, 'gc', `${p.plan_id}.json`), 'utf8'));
    expect(stored.to_delete).toEqual(p.to_delete);
    // Planning deletes nothing.
    expect(descriptorIds(repo)).toEqual([s1, o1, o2, s2].sort());
  });

  it('run deletes exactly the plan, prints the reference phrase, and verify stays clean', () => {
    const { repo, s1, s2, o1, o2 } = repoWithGarbage();
    const p = plan(repo);
    const r = run(['gc', 'run', '--plan-id', p.plan_id], repo.main);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('GC completed successfully.');
    expect(descriptorIds(repo)).toEqual([s1, s2]);
    for (const id of [o1, o2]) {
      expect(fs.existsSync(path.join(repo.ctl, 'snapshots', id))).toBe(false);
      expect(JSON.parse(fs.readFileSync(path.join(repo.ctl, 'gc/tombstones', `${id}.json`), 'utf8'))).toMatchObject({ snapshot_id: id, gc_state: 'committed' });
    }
    expect(run(['verify', '--all'], repo.main).code).toBe(0);
    const audit = fs.readFileSync(path.join(repo.ctl, 'audit/audit.jsonl'), 'utf8');
    expect(audit).toContain('"event_type":"gc_run"');
    expect(audit).toContain('"event_type":"snapshot_delete"');
  });

  it('running the same plan twice is harmless (idempotent)', () => {
    const { repo, s1, s2 } = repoWithGarbage();
    const p = plan(repo);
    jvsOk(['gc', 'run', '--plan-id', p.plan_id], { cwd: repo.main });
    const again = run(['gc', 'run', '--plan-id', p.plan_id, '--json'], repo.main);
    expect(again.code).toBe(0);
    expect(again.json()).toMatchObject({ deleted: [], already_deleted: p.to_delete });
    expect(descriptorIds(repo)).toEqual([s1, s2]);
  });

  it('a plan that no longer holds fails with E_GC_PLAN_MISMATCH and deletes nothing', () => {
    const { repo, o1, o2 } = repoWithGarbage();
    const p = plan(repo);
    // o2 becomes a worktree's head again: the plan must not delete it (nor its parent).
    jvsOk(['worktree', 'fork', o2, 'revived'], { cwd: repo.main });
    const r = run(['gc', 'run', '--plan-id', p.plan_id, '--json'], repo.main);
    expectError(r, 'E_GC_PLAN_MISMATCH');
    expect(descriptorIds(repo)).toEqual(expect.arrayContaining([o1, o2]));
    expect(r.json().error.hint).toContain('jvs gc plan');
  });

  it('a pin protects a snapshot until unpinned; pin records have the design fields', () => {
    const { repo, o1, o2 } = repoWithGarbage();
    const pin = jvsOk(['gc', 'pin', o1, '--reason', 'release 1', '--expires', '30d', '--json'], { cwd: repo.main }).json();
    expect(pin.snapshot_id).toBe(o1);
    const stored = JSON.parse(fs.readFileSync(path.join(repo.ctl, 'pins', `${o1}.json`), 'utf8'));
    expect(Object.keys(stored).sort()).toEqual(['expires_at', 'pinned_at', 'reason', 'snapshot_id']);
    expect(Date.parse(stored.expires_at) - Date.parse(stored.pinned_at)).toBe(30 * 86_400_000);
    let p = plan(repo);
    expect(p.to_delete).toEqual([o2]);
    expect(p.protected_by_pin).toBe(1);
    jvsOk(['gc', 'unpin', o1], { cwd: repo.main });
    p = plan(repo);
    expect(p.to_delete).toEqual([o1, o2]);
    // A plan made before a pin fails once the pin exists.
    jvsOk(['gc', 'pin', o2], { cwd: repo.main });
    expectError(run(['gc', 'run', '--plan-id', p.plan_id, '--json'], repo.main), 'E_GC_PLAN_MISMATCH');
    // Pinning o2 keeps its parent o1 too: no surviving snapshot loses its parent.
    expect(plan(repo).to_delete).toEqual([]);
  });

  it('gc pin HEAD pins the latest snapshot of the worktree the command runs in', () => {
    const { repo, s2 } = repoWithGarbage();
    expect(jvsOk(['gc', 'pin', 'HEAD', '--json'], { cwd: repo.main }).json().snapshot_id).toBe(s2);
    expect(fs.existsSync(path.join(repo.ctl, 'pins', `${s2}.json`))).toBe(true);
    expect(jvsOk(['gc', 'unpin', 'HEAD', '--json'], { cwd: repo.main }).json().snapshot_id).toBe(s2);
    expect(fs.existsSync(path.join(repo.ctl, 'pins', `${s2}.json`))).toBe(false);
  });

  it('an expired pin protects nothing and is removed with its snapshot', () => {
    const { repo, o1, o2 } = repoWithGarbage();
    jvsOk(['gc', 'pin', o1, '--expires', '2020-01-01T00:00:00Z'], { cwd: repo.main });
    const p = plan(repo);
    expect(p.to_delete).toEqual([o1, o2]);
    jvsOk(['gc', 'run', '--plan-id', p.plan_id], { cwd: repo.main });
    // The lapsed pin goes with its snapshot.
    expect(fs.existsSync(path.join(repo.ctl, 'pins', `${o1}.json`))).toBe(false);
  });

  it('retention: --keep N keeps the N newest of each line, --within keeps recent ones, config.yaml supplies defaults', () => {
    const { repo, s1, s2, o1, o2 } = repoWithGarbage();
    // main's line is s2 → s1; o1 → o2 lie on no worktree's line any more.
    let p = plan(repo, ['--keep', '2']);
    expect(p.to_delete).toEqual([o1, o2]);
    expect(p.retention_policy).toEqual({ keep: 2, within: '' });
    expect(p.protected_by_retention).toBe(2);
    expect(p.protected_set).toEqual([s1, s2]);
    // keep 1: s1 is older on main's line, so it goes too (s2 then has a pruned parent).
    p = plan(repo, ['--keep', '1']);
    expect(p.to_delete).toEqual([s1, o1, o2].sort());
    expect(p.protected_by_lineage).toBe(0);
    p = plan(repo, ['--within', '1h']);
    expect(p.to_delete).toEqual([]);
    jvsOk(['config', 'set', 'retention.within', '1d'], { cwd: repo.main });
    p = plan(repo);
    expect(p.retention_policy).toEqual({ keep: 0, within: '1d' });
    expect(p.to_delete).toEqual([]);
    // Flags win over the file.
    p = plan(repo, ['--within', '0s']);
    expect(p.to_delete).toEqual([s1, o1, o2].sort());
    // retention.keep from the file.
    jvsOk(['config', 'set', 'retention.keep', '2'], { cwd: repo.main });
    p = plan(repo, ['--within', '0s']);
    expect(p.retention_policy).toEqual({ keep: 2, within: '0s' });
    expect(p.to_delete).toEqual([o1, o2]);
  });

  it('with a retention policy a pin keeps its own line (keep N from the pin), a tag keeps only itself, --include-tagged lifts tags', () => {
    const { repo, s1, s2, o1, o2 } = repoWithGarbage();
    jvsOk(['gc', 'pin', o2, '--reason', 'line left by a restore'], { cwd: repo.main });
    let p = plan(repo, ['--keep', '1']);
    expect(p.to_delete).toEqual([s1, o1].sort());
    p = plan(repo, ['--keep', '2']);
    expect(p.to_delete).toEqual([]);
    jvsOk(['gc', 'unpin', o2], { cwd: repo.main });
    // Tagged: protected by default, collected with --include-tagged.
    const t = path.join(repo.root, 'worktrees/t');
    jvsOk(['worktree', 'fork', o1, 't'], { cwd: repo.main });
    writeFiles(t, { 'tagged.txt': 'keep me' });
    const tagged = jvsOk(['snapshot', 'release', '--tag', 'release', '--json'], { cwd: t }).json().snapshot_id;
    jvsOk(['worktree', 'remove', 't', '--force'], { cwd: repo.main });
    p = plan(repo, ['--keep', '1']);
    expect(p.protected_set).toContain(tagged);
    expect(p.to_delete).toEqual([s1, o1, o2].sort());
    p = plan(repo, ['--keep', '1', '--include-tagged']);
    expect(p.retention_policy).toEqual({ keep: 1, within: '', include_tagged: true });
    expect(p.to_delete).toEqual([s1, o1, o2, tagged].sort());
    // Without a policy the reference's rule holds: a tag keeps its ancestors as well.
    p = plan(repo);
    expect(p.to_delete).toEqual([o2]);
    expect(p.protected_set).toEqual([s1, o1, s2, tagged].sort());
  });

  it('gc frees space: 10 snapshots each adding 1 MiB, `gc plan --keep 2` + `gc run` free at least 5 MiB; verify is clean and the pruned parent shows', () => {
    const repo = newRepo();
    jvsOk(['config', 'set', 'default_engine', 'copy'], { cwd: repo.main });
    // An unchanged file is hard-linked from snapshot to snapshot on the copy engine, so
    // deleting old snapshots frees nothing of it: the 1 MiB each snapshot adds must be
    // bytes only that snapshot holds (the file is rewritten), plus a file that never
    // changes (shared by all, so neither estimated nor freed).
    writeFiles(repo.main, { 'assets/shared.bin': 'S'.repeat(1 << 20) });
    const ids: string[] = [];
    for (let k = 1; k <= 10; k++) {
      fs.writeFileSync(path.join(repo.main, 'data.bin'), randomBytes(1 << 20));
      ids.push(snapshot(repo, `day ${k}`));
    }
    const before = usedBytes(repo.ctl);
    const p = plan(repo, ['--keep', '2']);
    expect(p.to_delete).toEqual(ids.slice(0, 8));
    expect(p.protected_set).toEqual(ids.slice(8));
    expect(p.deletable_bytes_estimate).toBeGreaterThanOrEqual(8 << 20);
    expect(p.deletable_bytes_estimate).toBeLessThan(9 << 20);
    const human = run(['gc', 'plan', '--keep', '2'], repo.main);
    expect(human.stdout).toContain('To delete: 8 snapshots');
    jvsOk(['gc', 'run', '--plan-id', p.plan_id], { cwd: repo.main });
    const freed = before - usedBytes(repo.ctl);
    expect(freed).toBeGreaterThanOrEqual(5 << 20);
    expect(descriptorIds(repo)).toEqual(ids.slice(8));
    // The index cache forgets the deleted snapshots' manifests at once.
    const D = createRequire(import.meta.url)('better-sqlite3');
    const db = new D(path.join(repo.ctl, 'index.sqlite'), { readonly: true });
    try {
      const owners = (db.prepare('SELECT owner FROM lists').all() as { owner: string }[]).map((r) => r.owner).filter((o) => o.startsWith('snapshot:'));
      expect(owners.sort()).toEqual(ids.slice(8).map((id) => `snapshot:${id}`));
    } finally {
      db.close();
    }

    // verify: clean, and the kept snapshot's parent is reported as pruned (from the tombstone).
    const v = run(['verify', '--all', '--json'], repo.main);
    expect(v.code, v.stdout).toBe(0);
    const first = v.json().results.find((r: any) => r.snapshot_id === ids[8]);
    expect(first).toMatchObject({ lineage_valid: true, severity: 'ok', parent_pruned: { snapshot_id: ids[7], plan_id: p.plan_id } });
    expect(v.stdout).not.toContain('E_LINEAGE_BROKEN');
    expect(run(['verify', '--all'], repo.main).stdout).toContain(`${ids[8]}  OK (parent ${ids[7]} pruned by gc)`);

    // history: the line ends at the pruned parent, said so.
    const h = jvsOk(['history', '--json'], { cwd: repo.main }).json().snapshots;
    expect(h.map((e: any) => e.snapshot_id)).toEqual([ids[9], ids[8]]);
    expect(h[1]).toMatchObject({ parent_id: ids[7], parent_pruned: true });
    expect(h[0].parent_pruned).toBeUndefined();
    expect(jvsOk(['history'], { cwd: repo.main }).stdout).toContain(`parent ${ids[7]} pruned by gc`);

    // doctor: healthy, and names the pruned parent.
    const d = run(['doctor', '--strict', '--json'], repo.main);
    expect(d.code, d.stdout).toBe(0);
    expect(d.json().healthy).toBe(true);
    expect(d.json().pruned_parents).toEqual([{ snapshot_id: ids[8], parent_id: ids[7], deleted_at: expect.any(String) }]);
    const dh = run(['doctor', '--strict'], repo.main).stdout;
    expect(dh).toContain(`snapshot ${ids[8]}: parent ${ids[7]} pruned by gc`);
    expect(dh).toContain('Repository is healthy.');

    // The repository keeps working: restore the older kept snapshot, snapshot again.
    jvsOk(['restore', ids[8]], { cwd: repo.main });
    expect(fs.readFileSync(path.join(repo.main, 'assets/shared.bin'), 'utf8')).toBe('S'.repeat(1 << 20));
  });

  it('a damaged parent without a tombstone is still broken lineage', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': '1' });
    const a = snapshot(repo, 'a');
    writeFiles(repo.main, { 'a.txt': '2' });
    const b = snapshot(repo, 'b');
    // The parent vanishes by hand, not by gc: no tombstone.
    fs.rmSync(path.join(repo.ctl, 'descriptors', `${a}.json`));
    fs.rmSync(path.join(repo.ctl, 'snapshots', a), { recursive: true });
    const v = run(['verify', '--all', '--json'], repo.main);
    expect(v.code).not.toBe(0);
    expect(v.json().results.find((r: any) => r.snapshot_id === b)).toMatchObject({ lineage_valid: false, error_class: 'E_LINEAGE_BROKEN' });
    expect(jvsOk(['history', '--json'], { cwd: repo.main }).json().snapshots[0].parent_pruned).toBeUndefined();
  });

  it('snapshots named by a pending intent are protected', () => {
    const { repo, o2 } = repoWithGarbage();
    fs.writeFileSync(path.join(repo.ctl, 'intents', 'restore-1-abcd.json'), JSON.stringify({ id: 'restore-1-abcd', operation: 'restore', worktree_name: 'main', snapshot_id: o2, started_at: '2026-01-01T00:00:00Z', pid: 1 }));
    expect(plan(repo).to_delete).toEqual([]);
  });

  it('bad arguments and unknown plans are clear errors', () => {
    const { repo } = repoWithGarbage();
    expectError(run(['gc', 'run', '--json'], repo.main), 'E_USAGE');
    expectError(run(['gc', 'run', '--plan-id', '00000000-0000-4000-8000-000000000000', '--json'], repo.main), 'E_NOT_FOUND');
    expectError(run(['gc', 'plan', '--keep', '-1', '--json'], repo.main), 'E_USAGE');
    expectError(run(['gc', 'plan', '--within', 'soon', '--json'], repo.main), 'E_USAGE');
    expectError(run(['gc', 'pin', 'no-such-snapshot', '--json'], repo.main), 'E_NOT_FOUND');
    expectError(run(['gc', 'unpin', 'HEAD', '--json'], repo.main), 'E_NOT_FOUND');
  });
});

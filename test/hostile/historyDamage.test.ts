import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFiles } from '../helpers/tmp.js';
import { expectError, newRepo, run, snapshot, type Repo } from '../integrity/support.js';

/**
 * Issue 14, item 9: a damaged descriptor is reported by history, never silently left
 * out. What can be read is still listed; the command exits non-zero with the class
 * of the damage and a hint naming verify and doctor.
 */

function threeSnapshots(): { repo: Repo; ids: string[] } {
  const repo = newRepo();
  const ids: string[] = [];
  for (const n of ['one', 'two', 'three']) {
    writeFiles(repo.main, { 'a.txt': n });
    ids.push(snapshot(repo, n));
  }
  return { repo, ids };
}

const truncate = (repo: Repo, id: string, bytes = 40) => fs.truncateSync(path.join(repo.ctl, 'descriptors', `${id}.json`), bytes);

describe('history with a damaged descriptor', () => {
  it("HEAD's descriptor truncated: not \"No snapshots yet.\" with exit 0 but E_DESCRIPTOR_CORRUPT naming it", () => {
    const { repo, ids } = threeSnapshots();
    truncate(repo, ids[2]!);
    const h = run(['history'], repo.main);
    expect(h.stdout).not.toContain('No snapshots yet.');
    expect(h.stdout).toContain(`DAMAGED  ${ids[2]}`);
    expect(h.code).toBe(8);
    expect(h.stderr).toContain('[E_DESCRIPTOR_CORRUPT]');
    expect(h.stderr).toMatch(/jvs verify .*jvs doctor/);
    const j = run(['history', '--json'], repo.main);
    expectError(j, 'E_DESCRIPTOR_CORRUPT');
    expect(j.json().damaged.map((d: { snapshot_id: string }) => d.snapshot_id)).toEqual([ids[2]]);
    expect(j.json().truncated_at).toBe(ids[2]);
  });

  it('a descriptor in the middle of the line: newer snapshots still listed, the break is named', () => {
    const { repo, ids } = threeSnapshots();
    truncate(repo, ids[1]!);
    const j = run(['history', '--json'], repo.main);
    expectError(j, 'E_DESCRIPTOR_CORRUPT');
    expect(j.json().snapshots.map((e: { snapshot_id: string }) => e.snapshot_id)).toEqual([ids[2]]);
    expect(j.json().damaged[0]).toMatchObject({ snapshot_id: ids[1], error_class: 'E_DESCRIPTOR_CORRUPT' });
  });

  it('history --all lists every readable snapshot and every damaged one', () => {
    const { repo, ids } = threeSnapshots();
    truncate(repo, ids[0]!, 0);
    const j = run(['history', '--all', '--json'], repo.main);
    expectError(j, 'E_DESCRIPTOR_CORRUPT');
    expect(j.json().snapshots.map((e: { snapshot_id: string }) => e.snapshot_id)).toEqual([ids[2], ids[1]]);
    expect(j.json().damaged.map((d: { snapshot_id: string }) => d.snapshot_id)).toEqual([ids[0]]);
  });

  it("HEAD's descriptor deleted: E_LINEAGE_BROKEN, not an empty history", () => {
    const { repo, ids } = threeSnapshots();
    fs.rmSync(path.join(repo.ctl, 'descriptors', `${ids[2]}.json`));
    const j = run(['history', '--json'], repo.main);
    expectError(j, 'E_LINEAGE_BROKEN');
  });

  it('status does not hide it either: E_DESCRIPTOR_CORRUPT', () => {
    const { repo, ids } = threeSnapshots();
    truncate(repo, ids[2]!);
    expectError(run(['status', '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
  });

  it('an undamaged repository still reads "No snapshots yet." / lists with exit 0', () => {
    const repo = newRepo();
    const h = run(['history'], repo.main);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('No snapshots yet.');
    writeFiles(repo.main, { 'a.txt': 'A' });
    const s1 = snapshot(repo, 'one');
    const j = run(['history', '--json'], repo.main);
    expect(j.code).toBe(0);
    expect(j.json().damaged).toEqual([]);
    expect(j.json().snapshots[0].snapshot_id).toBe(s1);
  });
});

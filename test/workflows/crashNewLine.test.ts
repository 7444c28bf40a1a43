import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFiles } from '../helpers/tmp.js';
import { descriptorIds, newRepo, run, snapshot, treeState, worktreeConfig, type Repo } from '../integrity/support.js';

/**
 * Kill -9 inside the two new kinds of snapshot — a new line from a restored snapshot,
 * and the unsaved work a restore keeps off the line — then doctor: the new line's
 * snapshot ends as head and latest with the left tip pinned (or is absent), and
 * unsaved work is kept, pinned, never made the worktree's head.
 */
const PUBLISHED = ['snapshot.7-publish-dir', 'snapshot.8-publish-descriptor', 'snapshot.9-head', 'snapshot.10-intent-done'];

function crash(args: string[], cwd: string, step: string) {
  const r = run(args, cwd, { JVS_FAULT: step });
  expect(r.signal, `${step} did not kill jvs ${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe('SIGKILL');
}

function repair(repo: Repo) {
  const d = run(['doctor', '--strict', '--repair-runtime', '--json'], repo.main);
  expect(d.code, d.stdout + d.stderr).toBe(0);
  expect(run(['verify', '--all'], repo.main).code).toBe(0);
  expect(fs.readdirSync(path.join(repo.ctl, 'intents'))).toEqual([]);
}

const pinned = (repo: Repo, id: string) => fs.existsSync(path.join(repo.ctl, 'pins', `${id}.json`));

describe('crash inside a new-line or unsaved-work snapshot, then doctor', () => {
  for (const step of PUBLISHED) {
    it(`a new line's snapshot killed at ${step} ends as head and latest, the left tip pinned`, () => {
      const repo = newRepo();
      writeFiles(repo.main, { 'a.txt': 'base' });
      const base = snapshot(repo, 'base');
      writeFiles(repo.main, { 'a.txt': 'line one' });
      const tip = snapshot(repo, 'tip of line one');
      expect(run(['restore', base], repo.main).code).toBe(0);
      writeFiles(repo.main, { 'a.txt': 'line two' });
      crash(['snapshot', 'line two'], repo.main, step);
      repair(repo);
      const fresh = descriptorIds(repo).filter((id) => id !== base && id !== tip);
      expect(fresh).toHaveLength(1);
      expect(worktreeConfig(repo)).toMatchObject({ head_snapshot_id: fresh[0], latest_snapshot_id: fresh[0] });
      expect(pinned(repo, tip)).toBe(true);
      expect(fs.readFileSync(path.join(repo.main, 'a.txt'), 'utf8')).toBe('line two');
    });
  }

  for (const step of ['snapshot.8-publish-descriptor', 'snapshot.9-head']) {
    it(`restore's unsaved-work snapshot killed at ${step}: kept and pinned, the worktree not moved, its files untouched`, () => {
      const repo = newRepo();
      writeFiles(repo.main, { 'a.txt': 'one' });
      const one = snapshot(repo, 'one');
      writeFiles(repo.main, { 'a.txt': 'two' });
      const two = snapshot(repo, 'two');
      writeFiles(repo.main, { 'a.txt': 'unsaved', 'new.bin': 'also unsaved' });
      const unsaved = treeState(repo.main);
      crash(['restore', one], repo.main, step);
      repair(repo);
      const kept = descriptorIds(repo).filter((id) => id !== one && id !== two);
      expect(kept).toHaveLength(1);
      expect(pinned(repo, kept[0]!)).toBe(true);
      expect(worktreeConfig(repo)).toMatchObject({ head_snapshot_id: two, latest_snapshot_id: two });
      expect(treeState(repo.main)).toEqual(unsaved);
      expect(treeState(path.join(repo.ctl, 'snapshots', kept[0]!), (r) => r === '.READY')).toEqual(unsaved);
    });
  }
});

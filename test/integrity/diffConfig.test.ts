import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IndexDb, snapshotOwner } from '../../src/index/indexDb.js';
import { Layout } from '../../src/repo/layout.js';
import { jvsOk } from '../helpers/cli.js';
import { writeFiles } from '../helpers/tmp.js';
import { expectError, newRepo, run, snapshot } from './support.js';

const DIFF_FIELDS = ['from_snapshot_id', 'to_snapshot_id', 'from_time', 'to_time', 'added', 'removed', 'modified', 'total_added', 'total_removed', 'total_modified'];

describe('diff', () => {
  function twoStates() {
    const repo = newRepo();
    writeFiles(repo.main, { 'same.txt': 'same', 'edit.txt': 'v1', 'gone.txt': 'bye', 'mode.sh': 'echo', 'dir/keep': 'k' });
    fs.symlinkSync('same.txt', path.join(repo.main, 'link'));
    const s1 = snapshot(repo, 'one');
    writeFiles(repo.main, { 'edit.txt': 'v2', 'new/file.txt': 'new' });
    fs.rmSync(path.join(repo.main, 'gone.txt'));
    fs.chmodSync(path.join(repo.main, 'mode.sh'), 0o755);
    fs.rmSync(path.join(repo.main, 'link'));
    fs.symlinkSync('edit.txt', path.join(repo.main, 'link'));
    return { repo, s1 };
  }

  it('snapshot vs snapshot: JSON has the contract fields and exact lists', () => {
    const { repo, s1 } = twoStates();
    const s2 = snapshot(repo, 'two');
    const d = jvsOk(['diff', s1, s2, '--json'], { cwd: repo.main }).json();
    for (const k of DIFF_FIELDS) expect(d).toHaveProperty(k);
    expect(d.from_snapshot_id).toBe(s1);
    expect(d.to_snapshot_id).toBe(s2);
    expect(Date.parse(d.from_time)).toBeLessThanOrEqual(Date.parse(d.to_time));
    expect(d.added).toEqual(['new/', 'new/file.txt']);
    expect(d.removed).toEqual(['gone.txt']);
    expect(d.modified).toEqual(['edit.txt', 'link', 'mode.sh']);
    expect([d.total_added, d.total_removed, d.total_modified]).toEqual([2, 1, 3]);
  });

  it('no ref compares the head with the live worktree; one ref compares that snapshot with it', () => {
    const { repo, s1 } = twoStates();
    const d = jvsOk(['diff', '--json'], { cwd: repo.main }).json();
    expect(d.from_snapshot_id).toBe(s1);
    expect(d.to_snapshot_id).toBeNull();
    expect(d.to_time).toBeNull();
    expect(d.modified).toEqual(['edit.txt', 'link', 'mode.sh']);
    const s2 = snapshot(repo, 'two');
    expect(jvsOk(['diff', '--json'], { cwd: repo.main }).json()).toMatchObject({ from_snapshot_id: s2, total_added: 0, total_removed: 0, total_modified: 0 });
    const one = jvsOk(['diff', s1, '--json'], { cwd: repo.main }).json();
    expect(one).toMatchObject({ from_snapshot_id: s1, to_snapshot_id: null, total_added: 2, total_removed: 1, total_modified: 3 });
  });

  it('a same-size content change is found; touching a file without changing it is not a change', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'AAAA', 'b.txt': 'BBBB' });
    snapshot(repo, 'one');
    fs.writeFileSync(path.join(repo.main, 'a.txt'), 'AAAB');
    fs.utimesSync(path.join(repo.main, 'b.txt'), 1, 1);
    expect(jvsOk(['diff', '--json'], { cwd: repo.main }).json().modified).toEqual(['a.txt']);
  });

  it('--stat prints only the counts; human output marks A/D/M', () => {
    const { repo } = twoStates();
    const stat = jvsOk(['diff', '--stat'], { cwd: repo.main }).stdout.trim().split('\n');
    expect(stat).toHaveLength(1);
    expect(stat[0]).toMatch(/^2 added, 1 removed, 3 modified/);
    const human = jvsOk(['diff'], { cwd: repo.main }).stdout;
    expect(human).toContain('A new/file.txt');
    expect(human).toContain('D gone.txt');
    expect(human).toContain('M edit.txt');
  });

  it('paths ignored by .jvsignore are left out of a worktree diff', () => {
    const repo = newRepo();
    writeFiles(repo.main, { '.jvsignore': 'Library/\n', 'a.txt': 'A' });
    snapshot(repo, 'one');
    writeFiles(repo.main, { 'Library/cache.bin': 'junk', 'b.txt': 'B' });
    expect(jvsOk(['diff', '--json'], { cwd: repo.main }).json().added).toEqual(['b.txt']);
  });

  it('from the index (manifests and the worktree state) it says exactly what walking the payloads says, partial snapshots and .jvsignore included', () => {
    const repo = newRepo();
    writeFiles(repo.main, { '.jvsignore': 'cache/\n', 'a.txt': 'AAAA', 'b.txt': 'BBBB', 'd/c.txt': 'C', 'Assets/x.png': 'x1', 'Assets/y.png': 'y1', 'mode.sh': 'echo', 'cache/junk': 'j' });
    fs.symlinkSync('a.txt', path.join(repo.main, 'link'));
    const s1 = snapshot(repo, 'one');
    fs.writeFileSync(path.join(repo.main, 'b.txt'), 'BBBC'); // same size, other bytes
    fs.utimesSync(path.join(repo.main, 'a.txt'), 1, 1); // touched, same bytes
    writeFiles(repo.main, { 'Assets/x.png': 'x2', 'Assets/new.png': 'n', 'cache/more': 'm' });
    const s2 = snapshot(repo, 'assets only', ['--paths', 'Assets']); // partial: the rest stays s1's
    fs.rmSync(path.join(repo.main, 'd'), { recursive: true });
    fs.chmodSync(path.join(repo.main, 'mode.sh'), 0o755);
    fs.rmSync(path.join(repo.main, 'link'));
    fs.symlinkSync('b.txt', path.join(repo.main, 'link'));
    const s3 = snapshot(repo, 'three');
    writeFiles(repo.main, { 'e.txt': 'E', 'Assets/y.png': 'y2' });
    fs.writeFileSync(path.join(repo.main, 'a.txt'), 'AAAZ'); // written just now: the state cannot vouch, so it is read
    const cases = [[], [s1], [s2], [s3], [s1, s2], [s2, s3], [s1, s3], [s3, s1]];
    const results = cases.map((refs) => {
      const { index_used: indexed, files_hashed: read, ...viaIndex } = jvsOk(['diff', ...refs, '--json'], { cwd: repo.main }).json();
      const { index_used: walkedIndex, ...walked } = jvsOk(['diff', ...refs, '--json'], { cwd: repo.main, env: { JVS_NO_INDEX: '1' } }).json();
      expect([indexed, walkedIndex], `jvs diff ${refs.join(' ')}`).toEqual([true, false]);
      // Two snapshots: manifest against manifest, nothing read. The worktree: a.txt and
      // Assets/y.png (same sizes, written after the last snapshot) must be read, and
      // fewer files than the walk of the payloads reads.
      if (refs.length === 2) expect(read, `jvs diff ${refs.join(' ')}`).toBe(0);
      else expect([read >= 2, read < walked.files_hashed], `jvs diff ${refs.join(' ')}: ${read} vs ${walked.files_hashed} files read`).toEqual([true, true]);
      delete walked.files_hashed;
      expect(viaIndex, `jvs diff ${refs.join(' ')}`).toEqual(walked);
      return viaIndex;
    });
    // The lists are what happened (not two equally wrong answers).
    expect(results[1]).toMatchObject({ added: ['Assets/new.png', 'e.txt'], removed: ['d/', 'd/c.txt'], modified: ['Assets/x.png', 'Assets/y.png', 'a.txt', 'b.txt', 'link', 'mode.sh'] });
    expect(results[4]).toMatchObject({ added: ['Assets/new.png'], removed: [], modified: ['Assets/x.png'] });
    expect(results[6]).toMatchObject({ added: ['Assets/new.png'], removed: ['d/', 'd/c.txt'], modified: ['Assets/x.png', 'b.txt', 'link', 'mode.sh'] });
  });

  it('a manifest in the index that does not match its descriptor is not believed: the payloads are walked', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'AAAA', 'b.txt': 'BBBB' });
    const s1 = snapshot(repo, 'one');
    fs.writeFileSync(path.join(repo.main, 'b.txt'), 'BBBC');
    const s2 = snapshot(repo, 'two');
    // What a user who can write .jvs/index.sqlite can do: s2's manifest claims b.txt kept s1's bytes.
    const idx = IndexDb.open(new Layout(repo.root))!;
    try {
      const a = idx.getList(snapshotOwner(s1))!.entries;
      const list = idx.getList(snapshotOwner(s2))!;
      idx.putList(snapshotOwner(s2), { entries: list.entries.map((e) => (e.rel === 'b.txt' ? { ...e, contentHash: a.find((x) => x.rel === 'b.txt')!.contentHash } : { ...e })), probeNs: list.probeNs });
    } finally {
      idx.close();
    }
    expect(jvsOk(['diff', s1, s2, '--json'], { cwd: repo.main }).json().modified).toEqual(['b.txt']);
    expect(jvsOk(['diff', s2, '--json'], { cwd: repo.main }).json().total_modified).toBe(0);
  });

  it('without snapshots or with an unknown ref it fails clearly', () => {
    const repo = newRepo();
    expectError(run(['diff', '--json'], repo.main), 'E_NOT_FOUND');
    writeFiles(repo.main, { 'a.txt': 'A' });
    snapshot(repo, 'one');
    expectError(run(['diff', 'nope', '--json'], repo.main), 'E_NOT_FOUND');
  });
});

describe('config show|get|set', () => {
  it('show lists every setting with its default; set writes YAML that get and gc read back', () => {
    const repo = newRepo();
    const shown = jvsOk(['config', 'show', '--json'], { cwd: repo.main }).json();
    expect(shown.effective).toEqual({ default_engine: 'auto', default_tags: [], output_format: 'text', progress_enabled: true, 'retention.keep': 0, 'retention.within': '' });
    jvsOk(['config', 'set', 'retention.keep', '7'], { cwd: repo.main });
    jvsOk(['config', 'set', 'default_tags', '[nightly, ci]'], { cwd: repo.main });
    jvsOk(['config', 'set', 'progress_enabled', 'false'], { cwd: repo.main });
    expect(jvsOk(['config', 'get', 'retention.keep', '--json'], { cwd: repo.main }).json()).toMatchObject({ value: 7, is_set: true });
    expect(jvsOk(['config', 'get', 'retention.keep'], { cwd: repo.main }).stdout.trim()).toBe('7');
    expect(jvsOk(['config', 'get', 'default_tags', '--json'], { cwd: repo.main }).json().value).toEqual(['nightly', 'ci']);
    expect(jvsOk(['config', 'get', 'default_engine', '--json'], { cwd: repo.main }).json()).toMatchObject({ value: 'auto', is_set: false });
    const text = fs.readFileSync(path.join(repo.ctl, 'config.yaml'), 'utf8');
    expect(text).toMatch(/retention:\n\s+keep: 7/);
    expect(jvsOk(['gc', 'plan', '--json'], { cwd: repo.main }).json().retention_policy).toEqual({ keep: 7, within: '' });
    writeFiles(repo.main, { 'a.txt': 'A' });
    expect(snapshot(repo, 'tagged by config')).toBeTruthy();
    expect(jvsOk(['history', '--json'], { cwd: repo.main }).json().snapshots[0].tags).toEqual(['nightly', 'ci']);
  });

  it('set keeps comments and unrelated settings in the file', () => {
    const repo = newRepo();
    fs.writeFileSync(path.join(repo.ctl, 'config.yaml'), '# team settings\ndefault_engine: copy # fast enough\n');
    jvsOk(['config', 'set', 'retention.within', '30d'], { cwd: repo.main });
    const text = fs.readFileSync(path.join(repo.ctl, 'config.yaml'), 'utf8');
    expect(text).toContain('# team settings');
    expect(text).toContain('default_engine: copy # fast enough');
    expect(text).toMatch(/within: 30d/);
  });

  it('bad keys and values are refused before anything is written', () => {
    const repo = newRepo();
    expectError(run(['config', 'set', 'no_such_key', '1', '--json'], repo.main), 'E_USAGE');
    expectError(run(['config', 'get', 'no_such_key', '--json'], repo.main), 'E_USAGE');
    expectError(run(['config', 'set', 'retention.keep', '-3', '--json'], repo.main), 'E_CONFIG_INVALID');
    expectError(run(['config', 'set', 'retention.within', 'soon', '--json'], repo.main), 'E_CONFIG_INVALID');
    expectError(run(['config', 'set', 'default_engine', 'magic', '--json'], repo.main), 'E_CONFIG_INVALID');
    expectError(run(['config', 'set', 'default_tags', '[../x]', '--json'], repo.main), 'E_CONFIG_INVALID');
    expect(fs.existsSync(path.join(repo.ctl, 'config.yaml'))).toBe(false);
  });
});

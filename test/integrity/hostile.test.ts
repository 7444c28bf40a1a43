import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateName } from '../../src/repo/names.js';
import { jvsOk } from '../helpers/cli.js';
import { itWith } from '../helpers/prereq.js';
import { tmpDir, writeFiles } from '../helpers/tmp.js';
import { descriptorIds, expectError, newRepo, run, snapshot, treeState, type Repo } from './support.js';

/** Nothing was published and no runtime state was left. */
function expectNothingPublished(repo: Repo, before: string[] = []) {
  expect(descriptorIds(repo)).toEqual(before);
  expect(fs.readdirSync(path.join(repo.ctl, 'snapshots')).sort()).toEqual(before);
  expect(fs.readdirSync(path.join(repo.ctl, 'intents'))).toEqual([]);
}

const BAD_NAMES: Array<[string, string]> = [
  ['..', 'parent component'],
  ['.', 'current component'],
  ['a/b', 'slash'],
  ['../escape', 'climbing path'],
  ['a\\b', 'backslash'],
  ['x\u0001y', 'control character'],
  ['tab\there', 'tab'],
  ['m\u0430in', 'Cyrillic a look-alike'],
  ['\uff4d\uff41\uff49\uff4e', 'full-width letters'],
  ['caf\u0065\u0301', 'combining accent'],
  ['a\u2215b', 'division-slash look-alike'],
];

describe('hostile names', () => {
  for (const [name, why] of BAD_NAMES) {
    it(`worktree name with ${why} is refused with E_NAME_INVALID and creates nothing`, () => {
      const repo = newRepo();
      writeFiles(repo.main, { 'a.txt': 'A' });
      const s1 = snapshot(repo, 'one');
      const r = run(['worktree', 'fork', s1, name, '--json'], repo.main);
      expectError(r, 'E_NAME_INVALID');
      expect(fs.readdirSync(path.join(repo.ctl, 'worktrees'))).toEqual(['main']);
      expect(fs.existsSync(path.join(repo.root, 'worktrees')) ? fs.readdirSync(path.join(repo.root, 'worktrees')) : []).toEqual([]);
      expect(fs.readdirSync(path.dirname(repo.root))).toEqual(['repo']);
    });
  }

  it('tags with separators, dot-dot or look-alikes are refused and nothing is published', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    for (const tag of ['../x', 'a/b', '..', 'v1\u00a0', 'r\u0435lease']) {
      expectError(run(['snapshot', 'n', '--tag', tag, '--json'], repo.main), 'E_NAME_INVALID');
    }
    expectNothingPublished(repo);
  });

  it('a NUL byte is refused in names (library), notes (-F file) and tags from config.yaml', () => {
    expect(() => validateName('a\u0000b')).toThrow(/control characters/);
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const noteFile = path.join(repo.root, 'note.txt');
    fs.writeFileSync(noteFile, 'before\u0000after');
    expectError(run(['snapshot', '-F', noteFile, '--json'], repo.main), 'E_NOTE_INVALID');
    fs.writeFileSync(path.join(repo.ctl, 'config.yaml'), 'default_tags: ["a\\0b"]\n');
    expectError(run(['snapshot', 'n', '--json'], repo.main), 'E_CONFIG_INVALID');
    expectNothingPublished(repo);
  });
});

it('an empty worktree name is a usage error naming what is missing', () => {
  const repo = newRepo();
  writeFiles(repo.main, { 'a.txt': 'A' });
  const s1 = snapshot(repo, 'one');
  expectError(run(['worktree', 'fork', s1, '', '--json'], repo.main), 'E_USAGE');
  expect(fs.readdirSync(path.join(repo.ctl, 'worktrees'))).toEqual(['main']);
});

describe('hostile sizes', () => {
  it('a 1 MiB note is refused with E_NOTE_INVALID and nothing is published', () => {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const noteFile = path.join(repo.root, 'huge-note.txt');
    fs.writeFileSync(noteFile, 'n'.repeat(1024 * 1024));
    const r = run(['snapshot', '-F', noteFile, '--json'], repo.main);
    expectError(r, 'E_NOTE_INVALID');
    expect(r.json().error.message).toContain('1048576 bytes');
    expectError(run(['snapshot', 'x'.repeat(100_000), '--json'], repo.main), 'E_NOTE_INVALID');
    expectNothingPublished(repo);
  });
});

describe('symlinks pointing outside the repository', () => {
  function outside() {
    const dir = tmpDir('jvs-outside-');
    writeFiles(dir, { 'secret.txt': 'top secret', 'sub/deep.txt': 'deep' });
    return dir;
  }

  it('snapshot records them as links and never copies what they point at', () => {
    const repo = newRepo();
    const out = outside();
    writeFiles(repo.main, { 'a.txt': 'A' });
    fs.symlinkSync(out, path.join(repo.main, 'out-dir'));
    fs.symlinkSync(path.join(out, 'secret.txt'), path.join(repo.main, 'out-file'));
    fs.symlinkSync('../../../../../../../../etc', path.join(repo.main, 'climb'));
    const s1 = snapshot(repo, 'links');
    const snap = path.join(repo.ctl, 'snapshots', s1);
    for (const l of ['out-dir', 'out-file', 'climb']) expect(fs.lstatSync(path.join(snap, l)).isSymbolicLink()).toBe(true);
    const all = execFileSync('find', [snap], { encoding: 'utf8' });
    expect(all).not.toContain('secret');
    expect(all).not.toContain('deep.txt');
    expect(run(['verify', '--all'], repo.main).code).toBe(0);
  });

  it('--paths through a symlink that leaves the worktree fails with E_PATH_ESCAPE', () => {
    const repo = newRepo();
    const out = outside();
    writeFiles(repo.main, { 'a.txt': 'A' });
    fs.symlinkSync(out, path.join(repo.main, 'out-dir'));
    expectError(run(['snapshot', 'n', '--paths', 'out-dir/sub', '--json'], repo.main), 'E_PATH_ESCAPE');
    expectError(run(['snapshot', 'n', '--paths', '../..', '--json'], repo.main), 'E_PATH_ESCAPE');
    expectNothingPublished(repo);
  });

  it('restore replaces a symlinked folder instead of writing through it', () => {
    const repo = newRepo();
    const out = outside();
    const outBefore = treeState(out);
    writeFiles(repo.main, { 'sub/deep.txt': 'from snapshot', 'secret.txt': 'snapshot secret' });
    const s1 = snapshot(repo, 'plain');
    const stateA = treeState(repo.main);
    // Make the worktree's folders and files links to the outside, then restore.
    fs.rmSync(path.join(repo.main, 'sub'), { recursive: true });
    fs.symlinkSync(path.join(out, 'sub'), path.join(repo.main, 'sub'));
    fs.rmSync(path.join(repo.main, 'secret.txt'));
    fs.symlinkSync(path.join(out, 'secret.txt'), path.join(repo.main, 'secret.txt'));
    const r = run(['restore', s1, '--json'], repo.main);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(treeState(out)).toEqual(outBefore);
    expect(treeState(repo.main)).toEqual(stateA);
    expect(fs.lstatSync(path.join(repo.main, 'sub')).isDirectory()).toBe(true);
  });
});

describe('malformed JSON in control-plane files gives a clear error class, no stack trace', () => {
  function repoWithSnapshot() {
    const repo = newRepo();
    writeFiles(repo.main, { 'a.txt': 'A' });
    const s1 = snapshot(repo, 'one');
    return { repo, s1 };
  }
  const GARBAGE = '{"not": json at all';

  it('descriptor → E_DESCRIPTOR_CORRUPT (verify, doctor, gc plan)', () => {
    const { repo, s1 } = repoWithSnapshot();
    fs.writeFileSync(path.join(repo.ctl, 'descriptors', `${s1}.json`), GARBAGE);
    expectError(run(['verify', '--all', '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
    expectError(run(['verify', s1, '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
    expectError(run(['doctor', '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
    // gc cannot see the damaged snapshot's parent link, so it refuses to plan.
    expectError(run(['gc', 'plan', '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
  });

  it('.READY marker → E_DESCRIPTOR_CORRUPT', () => {
    const { repo, s1 } = repoWithSnapshot();
    const ready = path.join(repo.ctl, 'snapshots', s1, '.READY');
    fs.chmodSync(ready, 0o644);
    fs.writeFileSync(ready, '{"snapshot_id": "x"}');
    expectError(run(['verify', s1, '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
  });

  it('worktree config → E_DESCRIPTOR_CORRUPT (snapshot, restore)', () => {
    const { repo, s1 } = repoWithSnapshot();
    fs.writeFileSync(path.join(repo.ctl, 'worktrees/main/config.json'), GARBAGE);
    expectError(run(['snapshot', 'n', '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
    expectError(run(['restore', s1, '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
    expect(descriptorIds(repo)).toEqual([s1]);
  });

  it('intent → E_DESCRIPTOR_CORRUPT (doctor, gc plan)', () => {
    const { repo } = repoWithSnapshot();
    fs.writeFileSync(path.join(repo.ctl, 'intents', 'restore-1-abcdef01.json'), GARBAGE);
    expectError(run(['doctor', '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
    expectError(run(['gc', 'plan', '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
  });

  it('pin → E_DESCRIPTOR_CORRUPT (gc plan, doctor)', () => {
    const { repo, s1 } = repoWithSnapshot();
    fs.writeFileSync(path.join(repo.ctl, 'pins', `${s1}.json`), GARBAGE);
    const r = run(['gc', 'plan', '--json'], repo.main);
    expectError(r, 'E_DESCRIPTOR_CORRUPT');
    expect(r.json().error.message).toContain('pin record');
    expectError(run(['doctor', '--json'], repo.main), 'E_DESCRIPTOR_CORRUPT');
  });

  it('gc plan → E_GC_PLAN_MISMATCH (gc run)', () => {
    const { repo } = repoWithSnapshot();
    const planId = jvsOk(['gc', 'plan', '--json'], { cwd: repo.main }).json().plan_id;
    fs.writeFileSync(path.join(repo.ctl, 'gc', `${planId}.json`), GARBAGE);
    expectError(run(['gc', 'run', '--plan-id', planId, '--json'], repo.main), 'E_GC_PLAN_MISMATCH');
  });

  it('config.yaml → E_CONFIG_INVALID (snapshot, config show, config set)', () => {
    const { repo, s1 } = repoWithSnapshot();
    fs.writeFileSync(path.join(repo.ctl, 'config.yaml'), 'retention: [unclosed\n  keep: : :\n');
    expectError(run(['snapshot', 'n', '--json'], repo.main), 'E_CONFIG_INVALID');
    expectError(run(['config', 'show', '--json'], repo.main), 'E_CONFIG_INVALID');
    expectError(run(['config', 'set', 'retention.keep', '3', '--json'], repo.main), 'E_CONFIG_INVALID');
    expect(descriptorIds(repo)).toEqual([s1]);
  });

  it('audit log → E_AUDIT_CHAIN_BROKEN (verify --all)', () => {
    const { repo } = repoWithSnapshot();
    const log = path.join(repo.ctl, 'audit/audit.jsonl');
    fs.writeFileSync(log, fs.readFileSync(log, 'utf8').replace(/\n(.)/, `\n${GARBAGE}\n$1`));
    expectError(run(['verify', '--all', '--json'], repo.main), 'E_AUDIT_CHAIN_BROKEN');
  });

  it('format_version → E_FORMAT_UNSUPPORTED; human mode shows class and hint without a stack', () => {
    const { repo } = repoWithSnapshot();
    fs.writeFileSync(path.join(repo.ctl, 'format_version'), 'banana\n');
    expectError(run(['info', '--json'], repo.main), 'E_FORMAT_UNSUPPORTED');
    const human = run(['snapshot', 'n'], repo.main);
    expect(human.code).not.toBe(0);
    expect(human.stderr).toMatch(/error \[E_FORMAT_UNSUPPORTED\]/);
    expect(human.stderr).toMatch(/hint: /);
    expect(human.stderr).not.toMatch(/\n\s+at /);
  });

  it('a garbage lock owner record does not block or crash anything', () => {
    const { repo } = repoWithSnapshot();
    fs.writeFileSync(path.join(repo.ctl, 'locks', 'repo.owner.json'), GARBAGE);
    expect(run(['snapshot', 'n', '--json'], repo.main).code).toBe(0);
  });
});

/** A tiny ext4 image on a loop device: the real ENOSPC, not a mock. */
const mounts: Array<{ mnt: string; img: string }> = [];
afterAll(() => {
  for (const m of mounts.splice(0)) {
    try {
      execFileSync('umount', [m.mnt]);
    } catch {
      try { execFileSync('umount', ['-l', m.mnt]); } catch { /* already gone */ }
    }
    fs.rmSync(m.img, { force: true });
    fs.rmSync(m.mnt, { recursive: true, force: true });
  }
});

function loopMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to mount a loop device';
  if (!fs.existsSync('/dev/loop-control')) return '/dev/loop-control is missing';
  try {
    execFileSync('mkfs.ext4', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'mkfs.ext4 is not installed (e2fsprogs)';
  }
  return undefined;
}

describe('a full disk during snapshot', () => {
  itWith('loop-mounted ext4', loopMissing(), 'ENOSPC leaves no visible partial snapshot and fails with E_NO_SPACE', () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'jvs-enospc-'));
    const img = `${base}.img`;
    const mnt = path.join(base, 'mnt');
    fs.mkdirSync(mnt);
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 16 * 1024 * 1024);
    execFileSync('mkfs.ext4', ['-q', '-F', img]);
    execFileSync('mount', ['-o', 'loop', img, mnt]);
    mounts.push({ mnt, img });

    jvsOk(['init', 'repo'], { cwd: mnt });
    const repo: Repo = { root: path.join(mnt, 'repo'), main: path.join(mnt, 'repo/main'), ctl: path.join(mnt, 'repo/.jvs') };
    writeFiles(repo.main, { 'small.txt': 'small' });
    const s1 = snapshot(repo, 'small');
    // 9 MiB of incompressible data: a second copy cannot fit in ~14 MiB usable.
    fs.writeFileSync(path.join(repo.main, 'big.bin'), crypto.randomBytes(9 * 1024 * 1024));
    const before = treeState(repo.main);
    const r = run(['snapshot', 'too big', '--json'], repo.main);
    expectError(r, 'E_NO_SPACE');
    expect(r.json().error.hint).toMatch(/gc|space/);
    expectNothingPublished(repo, [s1]);
    expect(fs.readdirSync(path.join(repo.ctl, 'descriptors')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(treeState(repo.main)).toEqual(before);
    const v = run(['verify', '--all', '--json'], repo.main);
    expect(v.code, v.stdout).toBe(0);
    expect(run(['doctor', '--strict'], repo.main).stdout).toContain('Repository is healthy.');
    // The failed attempt gave its space back: a smaller snapshot now fits.
    fs.rmSync(path.join(repo.main, 'big.bin'));
    fs.writeFileSync(path.join(repo.main, 'medium.bin'), crypto.randomBytes(4 * 1024 * 1024));
    const s2 = run(['snapshot', 'fits', '--json'], repo.main);
    expect(s2.code, s2.stdout).toBe(0);
  });
});

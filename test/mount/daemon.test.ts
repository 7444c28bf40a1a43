// `jvs mount --daemon` and `jvs doctor` agree: a live daemon's log is named after it
// and is never debris; a daemon that does not come up leaves nothing behind and its
// real error class is the launcher's.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it as plainIt } from 'vitest';
import { jvs, jvsOk } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';
import { itWith } from '../helpers/prereq.js';
import { fuseMissing, mountNewRepo } from './mountHelpers.js';

const MISSING = fuseMissing();
const it = (name: string, fn: () => unknown | Promise<unknown>) => itWith('FUSE', MISSING, name, fn, 180_000);

const mountLogs = (root: string) => fs.readdirSync(path.join(root, '.jvs/tmp')).filter((n) => n.startsWith('mount-'));

function newRepo(): { root: string; main: string } {
  const dir = tmpDir();
  jvsOk(['init', 'repo'], { cwd: dir });
  return { root: path.join(dir, 'repo'), main: path.join(dir, 'repo/main') };
}

describe('jvs mount --daemon and jvs doctor agree', () => {
  it("a live daemon's log is named after the daemon's pid, and doctor never calls it debris", () => {
    const m = mountNewRepo({ 'f.txt': 'x\n' });
    expect(mountLogs(m.root)).toEqual([`mount-${m.pid}.log`]);
    const d = jvs(['doctor', '--json'], { cwd: m.main });
    expect(d.code, d.stdout).toBe(0);
    expect(JSON.parse(d.stdout).findings).toEqual([]);
    jvsOk(['doctor', '--repair-runtime'], { cwd: m.main });
    expect(mountLogs(m.root)).toEqual([`mount-${m.pid}.log`]);
  });

  it('a second --daemon mount on a live mountpoint exits non-zero with E_ALREADY_EXISTS and leaves no log', () => {
    const m = mountNewRepo({ 'f.txt': 'x\n' });
    const r = jvs(['mount', '--daemon', '--json', m.mnt], { cwd: m.main });
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    expect(JSON.parse(r.stdout).error.class).toBe('E_ALREADY_EXISTS');
    expect(JSON.parse(r.stdout).error.message).toContain('already a mount point');
    expect(mountLogs(m.root)).toEqual([`mount-${m.pid}.log`]);
    // The first mount is untouched.
    expect(fs.readFileSync(path.join(m.mnt, 'current/f.txt'), 'utf8')).toBe('x\n');
  });
});

describe('mountpoint checks give their own error classes, in the foreground and through --daemon', () => {
  const cases: Array<{ what: string; cls: string; mp: (repo: { root: string; main: string }) => string }> = [
    { what: 'a missing mountpoint', cls: 'E_NOT_FOUND', mp: () => path.join(tmpDir(), 'nowhere') },
    {
      what: 'a non-empty mountpoint',
      cls: 'E_USAGE',
      mp: () => {
        const d = tmpDir();
        fs.writeFileSync(path.join(d, 'something'), 'here');
        return d;
      },
    },
    {
      what: 'a mountpoint inside the repository',
      cls: 'E_PATH_ESCAPE',
      mp: (repo) => {
        fs.mkdirSync(path.join(repo.main, 'mnt'));
        return path.join(repo.main, 'mnt');
      },
    },
  ];
  for (const c of cases) {
    for (const daemon of [false, true]) {
      plainIt(`${c.what}: ${c.cls}${daemon ? ' (--daemon), and no log left behind' : ''}`, () => {
        const repo = newRepo();
        const mp = c.mp(repo);
        const r = jvs(['mount', ...(daemon ? ['--daemon'] : []), '--json', mp], { cwd: repo.main });
        expect(r.code, r.stdout + r.stderr).not.toBe(0);
        expect(JSON.parse(r.stdout).error.class).toBe(c.cls);
        expect(mountLogs(repo.root)).toEqual([]);
      });
    }
  }
});

describe('JVS_MOUNT_IMPL names the mount; only `ll` (libfuse 3) is left', () => {
  for (const daemon of [false, true]) {
    plainIt(`JVS_MOUNT_IMPL=fuse-native (removed) is refused with E_USAGE before anything is mounted${daemon ? ' (--daemon)' : ''}`, () => {
      const repo = newRepo();
      const mp = tmpDir();
      const r = jvs(['mount', ...(daemon ? ['--daemon'] : []), '--json', mp], { cwd: repo.main, env: { JVS_MOUNT_IMPL: 'fuse-native' } });
      expect(r.code, r.stdout + r.stderr).not.toBe(0);
      const err = JSON.parse(r.stdout).error;
      expect(err.class).toBe('E_USAGE');
      expect(err.message).toContain('fuse-native (libfuse 2) mount was removed');
      expect(fs.readdirSync(mp)).toEqual([]);
      expect(mountLogs(repo.root)).toEqual([]);
    });
  }
});

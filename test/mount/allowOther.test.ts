// --allow-other with a root daemon, driven by a real unprivileged user (useradd): every
// request runs with the caller's fsuid/fsgid, control files are the owner's only, and a
// folder swapped for a symlink (through the mount or in the worktree folder itself)
// never leads the daemon outside the worktree.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect } from 'vitest';
import { JVS_BIN } from '../helpers/cli.js';
import { itWith } from '../helpers/prereq.js';
import { fuse3Missing, MOUNT_MODES, mountNewRepo, sh, shOk, useMountEnv } from './mountHelpers.js';

const USER = 'jvs-other';

/** Why the test cannot run here: FUSE 3, root (for --allow-other and useradd). */
function missing(): string | undefined {
  const f = fuse3Missing();
  if (f) return f;
  if (process.getuid?.() !== 0) return 'needs root (a root daemon with --allow-other, and useradd)';
  if (spawnSync('id', [USER], { stdio: 'ignore' }).status !== 0) {
    const r = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER], { encoding: 'utf8' });
    if (r.status !== 0) return `useradd ${USER} failed: ${r.stderr}`;
  }
  return undefined;
}

const MISSING = missing();
const it = (name: string, fn: () => unknown | Promise<unknown>) => itWith('FUSE allow_other', MISSING, name, fn, 240_000);

/** Run a bash script as the unprivileged user. */
function asUser(script: string, cwd: string) {
  const r = spawnSync('setpriv', ['--reuid', USER, '--regid', USER, '--init-groups', 'bash', '-c', script], { cwd, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

describe.each(MOUNT_MODES.filter((m) => !('JVS_MOUNT_SINGLE_THREAD' in m.env)))('--allow-other ($name)', ({ env }) => {
  beforeAll(() => useMountEnv(env));

  function setup() {
    const m = mountNewRepo({ 'shared/.keep': '', 'rootfile.txt': 'root only\n' }, ['--allow-other']);
    const top = path.dirname(m.root);
    // The user may pass through the test folder (not list it) and use the shared folder.
    fs.chmodSync(top, 0o711);
    fs.chmodSync(m.root, 0o755);
    fs.chmodSync(m.main, 0o755);
    fs.chmodSync(path.join(m.main, 'shared'), 0o1777);
    fs.chmodSync(path.join(m.main, 'rootfile.txt'), 0o600);
    // A root-only folder outside the worktree.
    const secret = path.join(top, 'rootonly');
    fs.mkdirSync(secret, { mode: 0o700 });
    fs.writeFileSync(path.join(secret, 'secret.txt'), 'SECRET\n');
    fs.writeFileSync(path.join(secret, 'victim.txt'), 'keep me\n');
    return { m, secret };
  }

  it('runs requests as the caller: files belong to them, root-only files stay closed', () => {
    const { m } = setup();
    const r = asUser('echo mine > current/shared/mine.txt && stat -c %U:%G current/shared/mine.txt; cat current/rootfile.txt', m.mnt);
    expect(r.stdout.trim()).toBe(`${USER}:${USER}`);
    expect(r.stderr).toContain('Permission denied');
    expect(fs.statSync(path.join(m.main, 'shared/mine.txt')).uid).not.toBe(0);
  });

  it("ctl/ files are the mount owner's: the other user can neither read status nor take snapshots", () => {
    const { m } = setup();
    const r = asUser('cat .jvs/ctl/status; echo "not mine" > .jvs/ctl/snapshot; echo HEAD > .jvs/ctl/restore', m.mnt);
    expect(r.stdout).toBe('');
    // (Only the control files' lines: bash may also fail to read root's ~/.bashrc when its
    // stdin is a socket, as Node's pipes are.)
    expect(r.stderr.match(/\.jvs\/ctl\/(status|snapshot|restore): Permission denied/g)?.length, r.stderr).toBe(3);
    expect(JSON.parse(shOk('cat .jvs/ctl/status', m.mnt))).toMatchObject({ worktree: 'main' });
    expect(fs.readdirSync(path.join(m.root, '.jvs/snapshots')).filter((n) => !n.startsWith('.'))).toEqual([]);
  });

  it('a folder swapped for a symlink to a root-only folder while the user works through the mount reaches nothing outside', () => {
    const { m, secret } = setup();
    // Swaps through the mount and in the worktree folder itself, while reads, creates and
    // deletes go on through the mount in parallel.
    const script = `
set +e
mkdir -p current/shared/d && echo mine > current/shared/d/f.txt
( for i in $(seq 300); do
    cat current/shared/d/secret.txt 2>/dev/null
    echo planted > current/shared/d/planted.txt 2>/dev/null
    rm -f current/shared/d/victim.txt 2>/dev/null
  done ) &
for i in $(seq 150); do
  mv current/shared/d current/shared/d.x 2>/dev/null && ln -s '${secret}' current/shared/d 2>/dev/null
  rm -f current/shared/d 2>/dev/null; mv current/shared/d.x current/shared/d 2>/dev/null
  mv '${m.main}/shared/d' '${m.main}/shared/d.y' 2>/dev/null && ln -s '${secret}' '${m.main}/shared/d' 2>/dev/null
  rm -f '${m.main}/shared/d' 2>/dev/null; mv '${m.main}/shared/d.y' '${m.main}/shared/d' 2>/dev/null
done
wait
true`;
    const r = asUser(script, m.mnt);
    expect(r.stdout).not.toContain('SECRET');
    expect(fs.readdirSync(secret).sort()).toEqual(['secret.txt', 'victim.txt']);
    expect(fs.readFileSync(path.join(secret, 'victim.txt'), 'utf8')).toBe('keep me\n');
    // And the daemon answered all along (the loop ran against a working mount).
    expect(sh('ls current/shared', m.mnt).code).toBe(0);
  });
});

describe('--allow-other as a user other than root', () => {
  it('mounts when /etc/fuse.conf allows it, else fails at once naming the fix (user_allow_other)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jvs-ao-'));
    fs.chmodSync(dir, 0o777);
    const mnt = path.join(dir, 'mnt');
    const r = asUser(`${JVS_BIN} init r >/dev/null && mkdir mnt && cd r/main && ${JVS_BIN} mount --daemon --allow-other --json ${mnt}`, dir);
    try {
      const allowed = fs.readFileSync('/etc/fuse.conf', 'utf8').split('\n').some((l) => l.trim() === 'user_allow_other');
      if (allowed) {
        expect(r.code, r.stderr).toBe(0);
        expect(fs.readdirSync(mnt)).toContain('current');
      } else {
        // --json: the error envelope is on stdout.
        expect(r.code).toBe(2);
        const e = (JSON.parse(r.stdout) as { error: { class: string; message: string; hint: string } }).error;
        expect(e.class).toBe('E_USAGE');
        expect(e.message).toContain('user_allow_other');
        expect(e.hint).toContain('/etc/fuse.conf');
      }
    } finally {
      spawnSync('fusermount3', ['-uz', mnt], { stdio: 'ignore' });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JVS_CMD, jvs, jvsOk } from '../helpers/cli.js';
import { itWith } from '../helpers/prereq.js';
import { tmpDir } from '../helpers/tmp.js';
import { fuseMissing, MOUNT_MODES, mountNewRepo, useMountEnv } from '../mount/mountHelpers.js';

// Issue 14, item 8: any byte string the kernel allows as a name is snapshotted, hashed
// as bytes (like the reference), restored, shown by status and diff, and printed escaped.
// Paths here are Buffers end to end: the test never lets Node.js decode a name.

const b = (s: string) => Buffer.from(s, 'latin1');
const join = (...parts: Array<Buffer | string>) => Buffer.concat(parts.flatMap((p, i) => [...(i ? [b('/')] : []), typeof p === 'string' ? Buffer.from(p) : p]));

/** The hostile names: not UTF-8, control characters, a newline, a terminal escape sequence. */
const CAFE = b('caf\xe9.txt');
const ODD_DIR = b('d\xff\x01ir');
const NEWLINE = b('new\nline');
const ESCAPE = b('\x1b[2Jred\x1b[0m');
const LINK = b('lnk\xe9');
const LINK_TARGET = b('caf\xe9.txt');

function populate(main: string): void {
  fs.writeFileSync(join(main, CAFE), 'café in latin-1\n');
  fs.mkdirSync(join(main, ODD_DIR));
  fs.writeFileSync(join(main, ODD_DIR, NEWLINE), 'newline\n');
  fs.writeFileSync(join(main, ODD_DIR, b('inner\x80\x80')), 'two bytes\n');
  fs.writeFileSync(join(main, ESCAPE), 'escape\n');
  fs.writeFileSync(join(main, 'plain.txt'), 'plain\n');
  fs.symlinkSync(LINK_TARGET, join(main, LINK));
  // Old enough that the next snapshot may vouch for them by stat (the addon's classify path).
  const old = new Date(Date.now() - 3600_000);
  for (const p of [join(main, CAFE), join(main, ODD_DIR, NEWLINE), join(main, ODD_DIR, b('inner\x80\x80')), join(main, ESCAPE), join(main, 'plain.txt')]) fs.utimesSync(p, old, old);
}

/** Every entry below root as bytes: rel → type and content / target bytes. */
function treeBytes(root: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: Buffer, rel: Buffer | undefined) => {
    for (const name of fs.readdirSync(dir, { encoding: 'buffer' })) {
      const p = join(dir, name);
      const r = rel ? join(rel, name) : name;
      const st = fs.lstatSync(p);
      const key = r.toString('hex');
      if (st.isDirectory()) {
        out.set(key, `dir ${(st.mode & 0o777).toString(8)}`);
        walk(p, r);
      } else if (st.isSymbolicLink()) out.set(key, `symlink ${fs.readlinkSync(p, { encoding: 'buffer' }).toString('hex')}`);
      else out.set(key, `file ${(st.mode & 0o777).toString(8)} ${fs.readFileSync(p).toString('hex')}`);
    }
  };
  walk(root, undefined);
  return out;
}

/** The payload root hash by DESIGN.md §3, computed here over bytes only (names never decoded). */
function referenceRootHash(root: Buffer): string {
  const sha = (x: Buffer | string) => createHash('sha256').update(x).digest('hex');
  const lines: Buffer[] = [];
  const walk = (dir: Buffer, rel: Buffer | undefined) => {
    for (const name of fs.readdirSync(dir, { encoding: 'buffer' })) {
      if (name.equals(b('.READY'))) continue;
      const p = join(dir, name);
      const r = rel ? join(rel, name) : name;
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      if (st.isDirectory()) {
        lines.push(Buffer.concat([b('dir:'), r, b(`:mode=${mode}:${sha(name)}\n`)]));
        walk(p, r);
      } else if (st.isSymbolicLink()) lines.push(Buffer.concat([b('symlink:'), r, b(`:mode=${mode}:${sha(fs.readlinkSync(p, { encoding: 'buffer' }))}\n`)]));
      else lines.push(Buffer.concat([b('file:'), r, b(`:mode=${mode},size=${st.size}:${sha(fs.readFileSync(p))}\n`)]));
    }
  };
  walk(root, undefined);
  lines.sort(Buffer.compare);
  return sha(Buffer.concat(lines));
}

/** No raw control character reaches a terminal (newlines between lines aside). */
function noRawControls(text: string): void {
  // eslint-disable-next-line no-control-regex
  expect(text.replace(/\n/g, '')).not.toMatch(/[\u0000-\u001f\u007f]/);
  expect(text).not.toContain('\ufffd');
}

describe('names that are not UTF-8 or hold control characters (issue 14, item 8)', () => {
  for (const mode of ['addon', 'JavaScript fallback'] as const) {
    it(`round-trip through snapshot, status, diff, restore and verify, hashed as bytes like the reference (${mode})`, () => {
      const env = mode === 'addon' ? {} : { JVS_DISABLE_NATIVE: '1' };
      const dir = tmpDir();
      jvsOk(['init', 'repo'], { cwd: dir, env });
      const repo = `${dir}/repo`;
      const main = `${repo}/main`;
      populate(main);
      const before = treeBytes(b(main));

      // Snapshot: the root hash is the reference's, computed here over bytes.
      const snap = jvsOk(['--json', 'snapshot', 'hostile names'], { cwd: main, env }).json();
      expect(snap.payload_root_hash).toBe(referenceRootHash(b(main)));
      expect(snap.files).toBe(5);
      expect(treeBytes(b(`${repo}/.jvs/snapshots/${snap.snapshot_id}`))).toEqual(new Map([...before, [b('.READY').toString('hex'), expect.any(String)]]));

      // A second snapshot of the unchanged tree takes every file from the index (no read).
      const again = jvsOk(['--json', 'snapshot', 'again'], { cwd: main, env }).json();
      expect(again.payload_root_hash).toBe(snap.payload_root_hash);
      expect(again.incremental.linked).toBe(5);
      // With the addon its classify matched the scan's names to the index's records by bytes.
      if (mode === 'addon') expect(again.incremental.vouchedNatively).toBe(5);

      expect(jvsOk(['--json', 'status'], { cwd: main, env }).json().clean).toBe(true);

      // Changes to hostile names: status and diff list them; humans see them escaped.
      fs.writeFileSync(join(main, CAFE), 'changed\n');
      fs.rmSync(join(main, ODD_DIR, NEWLINE));
      fs.writeFileSync(join(main, b('added\x1b\xfe')), 'new\n');
      const st = jvsOk(['--json', 'status'], { cwd: main, env }).json();
      expect(st.modified).toEqual(['caf\udce9.txt']);
      expect(st.removed).toEqual(['d\udcff\x01ir/new\nline']);
      expect(st.added).toEqual(['added\x1b\udcfe']);
      expect(Buffer.from(st.path_bytes['caf\udce9.txt'], 'base64')).toEqual(CAFE);
      expect(Buffer.from(st.path_bytes['added\x1b\udcfe'], 'base64')).toEqual(b('added\x1b\xfe'));
      const human = jvsOk(['status'], { cwd: main, env }).stdout;
      expect(human).toContain('modified: "caf\\xe9.txt"');
      expect(human).toContain('removed:  "d\\xff\\x01ir/new\\nline"');
      expect(human).toContain('added:    "added\\x1b\\xfe"');
      noRawControls(human);

      const d = jvsOk(['--json', 'diff'], { cwd: main, env }).json();
      expect([d.added, d.removed, d.modified]).toEqual([['added\x1b\udcfe'], ['d\udcff\x01ir/new\nline'], ['caf\udce9.txt']]);
      const dh = jvsOk(['diff'], { cwd: main, env }).stdout;
      expect(dh).toContain('M "caf\\xe9.txt"');
      noRawControls(dh);
      // Snapshot to snapshot, unchanged: nothing listed.
      expect(jvsOk(['--json', 'diff', snap.snapshot_id, again.snapshot_id], { cwd: main, env }).json().total_modified).toBe(0);

      // Restore brings back every byte of every name, content and link target.
      const r = jvs(['restore', snap.snapshot_id], { cwd: main, env });
      expect(r.code, r.stderr).toBe(0);
      const after = treeBytes(b(main));
      expect(after).toEqual(before);
      expect(jvsOk(['--json', 'status'], { cwd: main, env }).json().clean).toBe(true);

      // Verify recomputes the root hash from the payload's bytes.
      const v = jvs(['--json', 'verify', '--all'], { cwd: main, env });
      expect(v.code, v.stdout + v.stderr).toBe(0);
      // doctor's check of payload files against their manifest stat reads the same names. (Only
      // with the addon: without it, times are set through doubles and lose nanoseconds, which
      // that check reports for every file, whatever its name.)
      if (mode === 'addon') {
        const doc = jvs(['--json', 'doctor'], { cwd: main, env });
        expect(doc.code, doc.stdout + doc.stderr).toBe(0);
      }
      const plan = jvs(['--json', 'gc', 'plan'], { cwd: main, env });
      expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    });
  }

  it('the addon and the JavaScript fallback agree on the root hash of the same hostile tree', () => {
    const hashes: string[] = [];
    for (const env of [{}, { JVS_DISABLE_NATIVE: '1' }]) {
      const dir = tmpDir();
      jvsOk(['init', 'repo'], { cwd: dir, env });
      populate(`${dir}/repo/main`);
      hashes.push(jvsOk(['--json', 'snapshot', 'x'], { cwd: `${dir}/repo/main`, env }).json().payload_root_hash);
    }
    expect(hashes[0]).toBe(hashes[1]);
  });
});

/**
 * jvs with arguments given as bytes (Buffers): run through bash, each argument a
 * $'…' word with every byte as \xNN, so the process receives exactly those bytes
 * (a JavaScript string argument would be sent as UTF-8).
 */
function jvsBytes(args: Array<string | Buffer>, cwd: string, env: Record<string, string> = {}) {
  const words = args.map((a) => `$'${[...(typeof a === 'string' ? Buffer.from(a) : a)].map((x) => `\\x${x.toString(16).padStart(2, '0')}`).join('')}'`);
  const r = spawnSync('bash', ['-c', `exec "$0" ${words.join(' ')}`, JVS_CMD], { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, encoding: 'utf8', input: '', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('byte names on the command line and through the mount (issue 14, item 8)', () => {
  for (const mode of ['addon', 'JavaScript fallback'] as const) {
    it(`snapshot --paths <byte name> records the exact bytes (descriptor checksum holds), and restore of that partial snapshot brings them back (${mode})`, () => {
      const env: Record<string, string> = mode === 'addon' ? {} : { JVS_DISABLE_NATIVE: '1' };
      const dir = tmpDir();
      jvsOk(['init', 'repo'], { cwd: dir, env });
      const repo = `${dir}/repo`;
      const main = `${repo}/main`;
      populate(main);
      jvsOk(['snapshot', 'base'], { cwd: main, env });
      fs.writeFileSync(join(main, CAFE), 'second version\n');
      fs.writeFileSync(join(main, ODD_DIR, NEWLINE), 'second newline\n');
      fs.writeFileSync(join(main, 'plain.txt'), 'not selected\n');

      const r = jvsBytes(['--json', 'snapshot', 'partial', '--paths', CAFE, join(ODD_DIR, NEWLINE)], main, env);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const snap = JSON.parse(r.stdout);
      expect(snap.partial_paths).toEqual(['caf\udce9.txt', 'd\udcff\x01ir/new\nline']);
      expect(snap.files).toBe(2);
      const stored = b(`${repo}/.jvs/snapshots/${snap.snapshot_id}`);
      expect(fs.readFileSync(join(stored, CAFE), 'utf8')).toBe('second version\n');
      expect(fs.existsSync(join(stored, 'plain.txt'))).toBe(false);
      // The descriptor keeps the bytes (\udcXX escapes) and its checksum over them holds.
      const descriptor = fs.readFileSync(`${repo}/.jvs/descriptors/${snap.snapshot_id}.json`, 'utf8');
      expect(descriptor).toContain('"caf\\udce9.txt"');
      const v = jvs(['--json', 'verify', '--all'], { cwd: main, env });
      expect(v.code, v.stdout + v.stderr).toBe(0);
      // Humans see the name escaped.
      const human = jvsBytes(['snapshot', 'partial again', '--paths', CAFE], main, env);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).toContain('Partial snapshot of: "caf\\xe9.txt"');
      noRawControls(human.stdout);

      // Restore of the partial snapshot touches only its paths and writes their exact bytes.
      fs.writeFileSync(join(main, CAFE), 'third\n');
      fs.rmSync(join(main, ODD_DIR, NEWLINE));
      const back = jvs(['--json', 'restore', snap.snapshot_id, '--discard-changes'], { cwd: main, env });
      expect(back.code, back.stdout + back.stderr).toBe(0);
      expect(fs.readFileSync(join(main, CAFE), 'utf8')).toBe('second version\n');
      expect(fs.readFileSync(join(main, ODD_DIR, NEWLINE), 'utf8')).toBe('second newline\n');
      expect(fs.readFileSync(join(main, 'plain.txt'), 'utf8')).toBe('not selected\n');
      // A path that does not exist is still reported, escaped.
      const missing = jvsBytes(['--json', 'snapshot', 'x', '--paths', b('nope\xe9')], main, env);
      expect(JSON.parse(missing.stdout).error.class).toBe('E_NOT_FOUND');
    });
  }

  const MISSING = fuseMissing();
  for (const m of MOUNT_MODES.filter((x) => !('JVS_MOUNT_SINGLE_THREAD' in x.env))) {
    itWith('FUSE', MISSING, `through the mount (${m.name}): a byte-named file made in current/ is snapshotted by .jvs/ctl/snapshot, shown in .jvs/snapshots/HEAD/ and restored by .jvs/ctl/restore`, () => {
      useMountEnv(m.env);
      const mounted = mountNewRepo({ 'plain.txt': 'plain\n' });
      const cur = b(path.join(mounted.mnt, 'current'));
      fs.writeFileSync(join(cur, CAFE), 'made through the mount\n');
      fs.mkdirSync(join(cur, ODD_DIR));
      fs.writeFileSync(join(cur, ODD_DIR, NEWLINE), 'nested\n');
      // The worktree on disk holds the exact bytes.
      expect(fs.readFileSync(join(b(mounted.main), CAFE), 'utf8')).toBe('made through the mount\n');

      fs.writeFileSync(path.join(mounted.mnt, '.jvs/ctl/snapshot'), 'byte names\n');
      const res = JSON.parse(fs.readFileSync(path.join(mounted.mnt, '.jvs/ctl/snapshot'), 'utf8'));
      expect(res, JSON.stringify(res)).toMatchObject({ ok: true, files: 3 });
      const head = b(path.join(mounted.mnt, '.jvs/snapshots/HEAD'));
      expect(fs.readdirSync(head, { encoding: 'buffer' }).map((n) => n.toString('hex')).sort()).toEqual([CAFE, ODD_DIR, b('plain.txt')].map((n) => n.toString('hex')).sort());
      expect(fs.readFileSync(join(head, CAFE), 'utf8')).toBe('made through the mount\n');
      expect(fs.readFileSync(join(head, ODD_DIR, NEWLINE), 'utf8')).toBe('nested\n');
      const desc = JSON.parse(fs.readFileSync(path.join(mounted.root, '.jvs/descriptors', `${res.snapshot_id}.json`), 'utf8'));
      expect(desc.payload_root_hash).toBe(referenceRootHash(b(path.join(mounted.root, '.jvs/snapshots', res.snapshot_id)))); // hashed as bytes, like the reference

      fs.writeFileSync(join(cur, CAFE), 'changed\n');
      fs.rmSync(join(cur, ODD_DIR), { recursive: true });
      fs.writeFileSync(path.join(mounted.mnt, '.jvs/ctl/restore'), 'HEAD\n');
      const rr = JSON.parse(fs.readFileSync(path.join(mounted.mnt, '.jvs/ctl/restore'), 'utf8'));
      expect(rr, JSON.stringify(rr)).toMatchObject({ ok: true });
      expect(fs.readFileSync(join(cur, CAFE), 'utf8')).toBe('made through the mount\n');
      expect(fs.readFileSync(join(cur, ODD_DIR, NEWLINE), 'utf8')).toBe('nested\n');
      expect(fs.readFileSync(join(b(mounted.main), ODD_DIR, NEWLINE), 'utf8')).toBe('nested\n');
      const v = jvs(['--json', 'verify', '--all'], { cwd: mounted.main });
      expect(v.code, v.stdout + v.stderr).toBe(0);
    }, 180_000);
  }
});

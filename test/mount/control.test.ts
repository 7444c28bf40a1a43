// Control files: one request is one line, or everything written up to close; a message
// in several write() calls is one request; an oversized message is refused as a whole.
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it as plainIt } from 'vitest';
import { CtlMessage, MAX_CTL_REQUEST, openJson } from '../../src/fuse/ctlMessage.js';
import { jvsOk } from '../helpers/cli.js';
import { itWith } from '../helpers/prereq.js';
import { fuseMissing, MOUNT_MODES, mountNewRepo, sh, shOk, snapshotIds, useMountEnv } from './mountHelpers.js';

describe('CtlMessage', () => {
  plainIt('completes a request at a write ending with a newline, not before', () => {
    const m = new CtlMessage();
    m.add(Buffer.from('part one, '));
    expect(m.takeComplete()).toBeUndefined();
    m.add(Buffer.from('part two\n'));
    expect(m.takeComplete()).toBe('part one, part two\n');
    expect(m.size).toBe(0);
  });

  plainIt('keeps a JSON object whose braces are open across lines, even with braces in strings', () => {
    expect(openJson('{"note": "a } b",\n')).toBe(true);
    expect(openJson('{"note": "a } b"}\n')).toBe(false);
    expect(openJson('plain { text\n')).toBe(false);
    const m = new CtlMessage();
    m.add(Buffer.from('{\n  "note": "x",\n'));
    expect(m.takeComplete()).toBeUndefined();
    m.add(Buffer.from('  "tags": ["v1"]\n}\n'));
    expect(JSON.parse(m.takeComplete()!)).toEqual({ note: 'x', tags: ['v1'] });
  });

  plainIt('hands what is left to close, and refuses a message past the bound', () => {
    const m = new CtlMessage();
    m.add(Buffer.from('no newline'));
    expect(m.takeComplete()).toBeUndefined();
    expect(m.takeRest()).toBe('no newline');
    expect(m.add(Buffer.alloc(MAX_CTL_REQUEST, 'a'))).toBe(true);
    expect(m.add(Buffer.from('b'))).toBe(false);
  });
});

const MISSING = fuseMissing();
const it = (name: string, fn: () => unknown | Promise<unknown>) => itWith('FUSE', MISSING, name, fn, 180_000);

describe.each(MOUNT_MODES.filter((m) => !('JVS_MOUNT_SINGLE_THREAD' in m.env)))('control files through a real mount ($name)', ({ env }) => {
  beforeAll(() => useMountEnv(env));

  it('a message written in several write() calls is one snapshot', () => {
    const m = mountNewRepo({ 'f.txt': 'x\n' });
    const py = `
import os
fd = os.open('.jvs/ctl/snapshot', os.O_WRONLY | os.O_TRUNC)
for part in (b'part one, ', b'part two, ', b'part three'):
    os.write(fd, part)
os.close(fd)
`;
    shOk(`python3 -c '${py.replaceAll("'", "'\\''")}'`, m.mnt);
    expect(snapshotIds(m.mnt)).toHaveLength(1);
    const hist = jvsOk(['history', '--json'], { cwd: m.main }).json<{ snapshots: Array<{ note?: string }> }>();
    expect(hist.snapshots.map((s) => s.note)).toEqual(['part one, part two, part three']);
  });

  it('a control-file snapshot waits for a lock another process holds briefly (another worktree publishing), then succeeds', () => {
    const m = mountNewRepo({ 'f.txt': 'x\n' });
    const lock = path.join(m.root, '.jvs/locks/repo');
    fs.mkdirSync(path.dirname(lock), { recursive: true });
    // util-linux flock takes the same flock(2) lock JVS takes; it lets go 1.5 s after it
    // has it. The snapshot is asked for once it has (the `held` file), not after a fixed
    // wait a slow start of flock could outlast.
    const held = path.join(m.root, 'held');
    shOk(`(flock -x '${lock}' sh -c "touch '${held}'; exec sleep 1.5" &) ; until [ -e '${held}' ]; do sleep 0.01; done ; echo "queued" > .jvs/ctl/snapshot`, m.mnt);
    expect(snapshotIds(m.mnt)).toHaveLength(1);
    expect(JSON.parse(fs.readFileSync(path.join(m.mnt, '.jvs/ctl/snapshot'), 'utf8'))).toMatchObject({ ok: true, note: 'queued' });
  });

  it('a pretty-printed JSON request spanning lines and writes is one snapshot', () => {
    const m = mountNewRepo({ 'f.txt': 'x\n' });
    shOk(`printf '{\\n  "note": "multi",\\n' > /tmp/jvs-ctl-$$; printf '  "tags": ["t1"]\\n}\\n' >> /tmp/jvs-ctl-$$; python3 -c '
import os, sys
fd = os.open(".jvs/ctl/snapshot", os.O_WRONLY)
for line in open(sys.argv[1], "rb"): os.write(fd, line)
os.close(fd)' /tmp/jvs-ctl-$$; rm -f /tmp/jvs-ctl-$$`, m.mnt);
    expect(snapshotIds(m.mnt)).toHaveLength(1);
    expect(JSON.parse(fs.readFileSync(path.join(m.mnt, '.jvs/ctl/snapshot'), 'utf8'))).toMatchObject({ ok: true, note: 'multi', tags: ['t1'] });
  });

  it('a 1 MiB message fails with E_NOTE_INVALID (EINVAL) and takes no snapshot', () => {
    const m = mountNewRepo({ 'f.txt': 'x\n' });
    const r = sh(`head -c 1048576 /dev/zero | tr '\\0' a > .jvs/ctl/snapshot`, m.mnt);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Invalid argument');
    expect(snapshotIds(m.mnt)).toEqual([]);
    expect(JSON.parse(fs.readFileSync(path.join(m.mnt, '.jvs/ctl/snapshot'), 'utf8'))).toMatchObject({ ok: false, errno: 'EINVAL', error: { class: 'E_NOTE_INVALID' } });
    // The file works for the next request.
    shOk('echo fine > .jvs/ctl/snapshot', m.mnt);
    expect(snapshotIds(m.mnt)).toHaveLength(1);
  });

  it('control files are the mount owner\'s only: snapshot and restore 0600, status 0400', () => {
    const m = mountNewRepo({ 'f.txt': 'x\n' });
    const mode = (n: string) => fs.statSync(path.join(m.mnt, '.jvs/ctl', n)).mode & 0o777;
    expect([mode('snapshot'), mode('restore'), mode('status')]).toEqual([0o600, 0o600, 0o400]);
  });
});

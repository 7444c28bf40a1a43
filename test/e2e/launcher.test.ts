import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JVS_CMD, jvsOk } from '../helpers/cli.js';
import { tmpDir, writeFiles } from '../helpers/tmp.js';

/**
 * bin/jvs, the installed command, sets NODE_EXTRA_CA_CERTS aside so Node does not parse
 * certificates at start-up, and hands it back to the programs jvs starts.
 */
describe('launcher (bin/jvs)', () => {
  it('runs through a chain of symlinks, as npm installs it', () => {
    const dir = tmpDir();
    fs.symlinkSync(JVS_CMD, path.join(dir, 'jvs-real'));
    fs.symlinkSync('jvs-real', path.join(dir, 'jvs'));
    const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(JVS_CMD), '../package.json'), 'utf8')) as { version: string };
    const r = spawnSync(path.join(dir, 'jvs'), ['--version'], { cwd: tmpDir(), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toContain(pkg.version);
  });

  it('the pre-snapshot hook sees the NODE_EXTRA_CA_CERTS the user set, and jvs itself does not', () => {
    const dir = tmpDir();
    jvsOk(['init', 'r'], { cwd: dir });
    const root = path.join(dir, 'r');
    const seen = path.join(dir, 'seen.txt');
    const hook = path.join(root, '.jvs/hooks/pre-snapshot');
    fs.mkdirSync(path.dirname(hook), { recursive: true });
    fs.writeFileSync(hook, `#!/bin/sh\nprintf '%s|%s' "$NODE_EXTRA_CA_CERTS" "\${JVS_SAVED_NODE_EXTRA_CA_CERTS-unset}" > ${seen}\n`, { mode: 0o755 });
    writeFiles(path.join(root, 'main'), { a: '1' });
    // A path that does not exist: Node would warn on stderr at start-up if it read it.
    const certs = path.join(dir, 'no-such-bundle.pem');
    const r = jvsOk(['snapshot', 'first'], { cwd: path.join(root, 'main'), env: { NODE_EXTRA_CA_CERTS: certs } });
    expect(r.stderr).not.toMatch(/extra certs/i);
    expect(fs.readFileSync(seen, 'utf8')).toBe(`${certs}|unset`);
  });
});

describe('output to a closed pipe', () => {
  it('`jvs status --json | head -c 1`: the reader leaving early is no error and prints no stack trace', () => {
    const dir = tmpDir();
    jvsOk(['init', 'r'], { cwd: dir });
    const main = path.join(dir, 'r/main');
    const files: Record<string, string> = {};
    for (let i = 0; i < 4000; i++) files[`a-rather-long-folder-name/and-a-long-file-name-${i}.txt`] = '';
    writeFiles(main, files);
    const full = jvsOk(['status', '--json'], { cwd: main }).stdout;
    expect(full.length).toBeGreaterThan(200_000); // far more than a pipe holds: jvs is still writing when head leaves
    const piped = spawnSync('sh', ['-c', `("${JVS_CMD}" status --json 2>"${dir}/err"; echo "jvs=$?" >"${dir}/rc") | head -c 1 >/dev/null`], { cwd: main, encoding: 'utf8' });
    expect(piped.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'rc'), 'utf8').trim()).toBe('jvs=0');
    expect(fs.readFileSync(path.join(dir, 'err'), 'utf8')).toBe('');
  });
});

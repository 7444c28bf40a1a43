import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JVS_CMD, jvs, jvsOk } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

function repo(): { root: string; main: string } {
  const dir = tmpDir();
  jvsOk(['init', 'r'], { cwd: dir });
  const root = path.join(dir, 'r');
  return { root, main: path.join(root, 'main') };
}

/**
 * Run jvs on a pseudo-terminal (util-linux `script`), as a user at a shell would; returns what
 * the terminal showed. JVS_PROGRESS_DELAY_MS=0 draws a bar at once: a 320 MiB snapshot can end
 * inside the default 300 ms wait, and then no bar is drawn whatever the config says.
 */
function onTty(args: string[], cwd: string): { code: number; screen: string } {
  const cmd = [JVS_CMD, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd, encoding: 'utf8', env: { ...process.env, JVS_PROGRESS_DELAY_MS: '0', NO_COLOR: '1', TERM: 'xterm' }, timeout: 300_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? 1, screen: r.stdout };
}

/** A file large enough for the bar (the CLI draws none for byte jobs under 64 MiB). */
function bigFile(dir: string, name: string, mib: number): void {
  const fd = fs.openSync(path.join(dir, name), 'w');
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < mib; i++) {
    block.fill(i + 1);
    block.writeUInt32LE(i, 0);
    fs.writeSync(fd, block);
  }
  fs.closeSync(fd);
}

describe('config.yaml output_format and progress_enabled are honoured; flags win', () => {
  it('output_format: json makes every command print JSON (errors as the envelope); --no-json gives text back', () => {
    const { main } = repo();
    fs.writeFileSync(path.join(main, 'a.txt'), 'a\n');
    jvsOk(['snapshot', 'one'], { cwd: main });
    jvsOk(['config', 'set', 'output_format', 'json'], { cwd: main });

    const info = jvsOk(['info'], { cwd: main });
    expect(info.json().total_snapshots).toBe(1);
    const history = jvsOk(['history'], { cwd: main }).json();
    expect(JSON.stringify(history)).toContain('one');

    const missing = jvs(['restore', 'no-such-ref'], { cwd: main });
    expect(missing.code).not.toBe(0);
    expect(missing.json().error.class).toBe('E_NOT_FOUND');

    const text = jvsOk(['info', '--no-json'], { cwd: main });
    expect(text.stdout).toMatch(/^Repository:/m);
    expect(() => JSON.parse(text.stdout)).toThrow();

    jvsOk(['config', 'set', 'output_format', 'text'], { cwd: main });
    expect(jvsOk(['info'], { cwd: main }).stdout).toMatch(/^Repository:/m);
  });

  it('a bad output_format is reported by the commands that read the config, and `jvs config set` repairs it', () => {
    const { root, main } = repo();
    fs.writeFileSync(path.join(root, '.jvs/config.yaml'), 'output_format: [unclosed\n');
    expect(jvs(['config', 'show'], { cwd: main }).stderr).toContain('E_CONFIG_INVALID');
    expect(jvs(['config', 'set', 'output_format', 'json'], { cwd: main }).stderr).toContain('not valid YAML');
    fs.writeFileSync(path.join(root, '.jvs/config.yaml'), '# ours\noutput_format: yes-please\n');
    expect(jvs(['config', 'show'], { cwd: main }).stderr).toContain('E_CONFIG_INVALID');
    jvsOk(['config', 'set', 'output_format', 'json'], { cwd: main });
    expect(jvsOk(['info'], { cwd: main }).json().format_version).toBe(1);
    expect(fs.readFileSync(path.join(root, '.jvs/config.yaml'), 'utf8')).toContain('# ours');
  });

  it('progress_enabled: false hides the bar on a terminal; --progress brings it back; a pipe never gets one', () => {
    const { main } = repo();
    bigFile(main, 'big.bin', 320);
    const shown = onTty(['snapshot', 'first'], main);
    expect(shown.code).toBe(0);
    expect(shown.screen).toMatch(/snapshot \[.*\d+\/320 MiB/);

    jvsOk(['config', 'set', 'progress_enabled', 'false'], { cwd: main });
    bigFile(main, 'big2.bin', 320);
    const hidden = onTty(['snapshot', 'second'], main);
    expect(hidden.code).toBe(0);
    expect(hidden.screen).toContain('Created snapshot');
    expect(hidden.screen).not.toMatch(/snapshot \[/);

    bigFile(main, 'big3.bin', 320);
    const forced = onTty(['snapshot', 'third', '--progress'], main);
    expect(forced.screen).toMatch(/snapshot \[.*MiB/);

    jvsOk(['config', 'set', 'progress_enabled', 'true'], { cwd: main });
    bigFile(main, 'big4.bin', 320);
    const piped = jvsOk(['snapshot', 'fourth', '--json'], { cwd: main });
    expect(piped.stderr).not.toMatch(/MiB/);
    expect(piped.json().snapshot_id).toMatch(/^\d{13}-[0-9a-f]{8}$/);
  }, 120_000);
});

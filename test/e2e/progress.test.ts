// Overall progress of verify --all and gc run: a bar over all snapshots on a terminal's
// stderr, never on a pipe, never in --json output. JVS_PROGRESS_DELAY_MS=0 draws the bar
// at once (by default it waits 300 ms so quick runs draw none): no timing in the test.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JVS_CMD, jvsOk } from '../helpers/cli.js';
import { tmpDir, writeFiles } from '../helpers/tmp.js';

const NOW = { JVS_PROGRESS_DELAY_MS: '0' };

/** `shell` (with $JVS the jvs command) on a pseudo-terminal (util-linux `script`); what the terminal showed. */
function onTty(shell: string, cwd: string): { code: number; screen: string } {
  const r = spawnSync('script', ['-qec', shell, '/dev/null'], { cwd, encoding: 'utf8', env: { ...process.env, ...NOW, JVS: JVS_CMD, NO_COLOR: '1', TERM: 'xterm' }, timeout: 300_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? 1, screen: r.stdout };
}

/** A repository with `n` snapshots on main and `garbage` more on a removed worktree (gc deletes those). */
function repo(n: number, garbage: number): { main: string } {
  const dir = tmpDir();
  jvsOk(['init', 'r'], { cwd: dir });
  const main = path.join(dir, 'r/main');
  for (let i = 0; i < n; i++) {
    writeFiles(main, { [`f${i}.txt`]: `file ${i}\n` });
    jvsOk(['snapshot', `s${i}`], { cwd: main });
  }
  if (garbage) {
    const old = jvsOk(['worktree', 'create', 'old', '--json'], { cwd: main }).json<{ path: string }>().path;
    for (let i = 0; i < garbage; i++) {
      writeFiles(old, { [`g${i}.txt`]: `garbage ${i}\n` });
      jvsOk(['snapshot', `g${i}`], { cwd: old });
    }
    jvsOk(['worktree', 'remove', 'old', '--force'], { cwd: main });
  }
  return { main };
}

describe('overall progress of long operations', () => {
  it('verify --all draws one bar over all snapshots on a terminal; a pipe and --json get none', () => {
    const { main } = repo(4, 0);
    const tty = onTty('"$JVS" verify --all', main);
    expect(tty.code).toBe(0);
    expect(tty.screen).toMatch(/verify \[.*\] \d+% \| \d\/4 snapshots/);
    expect(tty.screen).toContain('Verified 4 snapshots: no damage found.');

    // stdout to a file, stderr still the terminal: pure JSON, and --json draws no bar either.
    const json = onTty('"$JVS" verify --all --json > out.json', main);
    expect(json.code).toBe(0);
    expect(json.screen).not.toMatch(/snapshots/);
    expect(JSON.parse(fs.readFileSync(path.join(main, 'out.json'), 'utf8')).checked).toBe(4);
    fs.rmSync(path.join(main, 'out.json'));

    const piped = spawnSync(JVS_CMD, ['verify', '--all'], { cwd: main, encoding: 'utf8', env: { ...process.env, ...NOW } });
    expect(piped.status).toBe(0);
    expect(piped.stderr).not.toMatch(/snapshots|\[/);

    // --no-progress on the terminal: no bar.
    expect(onTty('"$JVS" verify --all --no-progress', main).screen).not.toMatch(/verify \[/);
  }, 120_000);

  it('gc run draws a bar over the snapshots it deletes on a terminal, none on a pipe', () => {
    const { main } = repo(1, 3);
    const plan = jvsOk(['gc', 'plan', '--json'], { cwd: main }).json<{ plan_id: string; to_delete: string[] }>();
    expect(plan.to_delete).toHaveLength(3);
    const tty = onTty(`"$JVS" gc run --plan-id ${plan.plan_id}`, main);
    expect(tty.code, tty.screen).toBe(0);
    expect(tty.screen).toMatch(/gc run \[.*\] \d+% \| \d\/3 snapshots/);
    expect(tty.screen).toContain('GC completed successfully.');

    const { main: other } = repo(1, 2);
    const p2 = jvsOk(['gc', 'plan', '--json'], { cwd: other }).json<{ plan_id: string }>();
    const piped = spawnSync(JVS_CMD, ['gc', 'run', '--plan-id', p2.plan_id], { cwd: other, encoding: 'utf8', env: { ...process.env, ...NOW } });
    expect(piped.status).toBe(0);
    expect(piped.stderr).not.toMatch(/snapshots|\[/);
    expect(piped.stdout).toContain('GC completed successfully.');
  }, 120_000);
});

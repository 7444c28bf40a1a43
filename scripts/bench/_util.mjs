// Shared helpers for bench modules: timing, medians, running commands and jvs.
import { spawnSync } from 'node:child_process';

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Wall time of fn in milliseconds. */
export function timeMs(fn) {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

export function sh(cmd, opts = {}) {
  const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  return r.stdout;
}

/** Run the `jvs` command (bin/jvs, the launcher users get) and return its stdout. */
export function jvs(bin, args, cwd, env = {}) {
  const r = spawnSync(bin, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env } });
  if (r.status !== 0) throw new Error(`jvs ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/**
 * Wall time in milliseconds of one command, read by a small bash child from its
 * $EPOCHREALTIME just before and after running it. Spawning straight from this process
 * would add the cost of forking it, and the bench process grows to ~1 GiB (the in-process
 * rows), which made even `node -e 0` look like 150 ms. Used alike for jvs and for the
 * tools it is compared with. Throws with the command's stderr when it fails.
 */
export function timeCmd(argv, { cwd, env } = {}) {
  const script = 's=$EPOCHREALTIME; "$@" >/dev/null; rc=$?; e=$EPOCHREALTIME; printf "%s %s %s" "$s" "$e" "$rc"';
  const r = spawnSync('bash', ['-c', script, 'timer', ...argv], { cwd, encoding: 'utf8', env: { ...process.env, ...env, LC_ALL: 'C' } });
  const [s, e, rc] = r.stdout.trim().split(' ');
  if (r.status !== 0 || rc !== '0') throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  return (Number(e) - Number(s)) * 1000;
}

/** timeCmd of a shell command line. */
export const timeSh = (cmd, opts) => timeCmd(['bash', '-c', cmd], opts);

/** timeCmd of `jvs args` as jvs() runs it. */
export const timeJvs = (bin, args, cwd, env = {}) => timeCmd([bin, ...args], { cwd, env: { NO_COLOR: '1', ...env } });

export function dropCaches() {
  spawnSync('bash', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });
}

export const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

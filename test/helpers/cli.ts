import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The compiled CLI's entry module (run with `node`). */
export const JVS_BIN = path.join(ROOT, 'bin/jvs.cjs');
/** The installed command: the shell launcher in front of JVS_BIN. */
export const JVS_CMD = path.join(ROOT, 'bin/jvs');

export interface JvsRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (throws when it is not exactly one JSON document). */
  json<T = any>(): T;
}

/** Run the built `jvs` command (the launcher) as a user would. */
export function jvs(args: string[], opts: { cwd: string; env?: Record<string, string | undefined>; input?: string }): JvsRun {
  const r = spawnSync(JVS_CMD, args, {
    cwd: opts.cwd,
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    input: opts.input ?? '',
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (r.error) throw r.error;
  return {
    code: r.status ?? (r.signal ? 128 : 1),
    stdout: r.stdout,
    stderr: r.stderr,
    json<T>() {
      return JSON.parse(r.stdout) as T;
    },
  };
}

/** Run jvs and fail with its output when it does not exit 0. */
export function jvsOk(args: string[], opts: Parameters<typeof jvs>[1]): JvsRun {
  const r = jvs(args, opts);
  if (r.code !== 0) throw new Error(`jvs ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

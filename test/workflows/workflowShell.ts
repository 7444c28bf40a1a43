import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { JVS_CMD } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * The users' workflows run as they wrote them: a bash script (`set -euo pipefail`) in a
 * fresh folder with the built `jvs` first on PATH, so every command line is the one a
 * user types. Only paths are adapted (a temp folder instead of /mnt/juicefs/…).
 */
export function runWorkflow(script: string, opts: { cwd?: string; env?: Record<string, string> } = {}): { cwd: string; stdout: string; stderr: string } {
  const cwd = opts.cwd ?? tmpDir('jvs-workflow-');
  const bin = tmpDir('jvs-bin-');
  fs.writeFileSync(path.join(bin, 'jvs'), `#!/bin/sh\nexec "${JVS_CMD}" "$@"\n`, { mode: 0o755 });
  const r = spawnSync('bash', ['-c', `set -euo pipefail\n${script}`], {
    cwd,
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, NO_COLOR: '1', ...opts.env },
    encoding: 'utf8',
    timeout: 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`workflow exited ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return { cwd, stdout: r.stdout, stderr: r.stderr };
}

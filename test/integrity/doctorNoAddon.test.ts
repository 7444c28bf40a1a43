import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jvs, jvsOk } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

const noAddon = { JVS_DISABLE_NATIVE: '1' };

describe('plain doctor compares payload stats with the manifest (without the addon too)', () => {
  it('a fresh snapshot made without the addon is healthy, though its copies lost the mtimes\' last nanoseconds; a >> into a payload file is still caught', () => {
    const dir = tmpDir();
    jvsOk(['init', 'r'], { cwd: dir, env: noAddon });
    const main = path.join(dir, 'r/main');
    for (let i = 0; i < 20; i++) {
      const f = path.join(main, `f${i}.txt`);
      fs.writeFileSync(f, `file ${i}\n`);
      // An mtime with nanoseconds that a double of seconds cannot hold exactly.
      fs.utimesSync(f, 1_796_000_000.123456789 + i, 1_796_000_000.987654321 + i);
    }
    const id = jvsOk(['snapshot', 'one', '--json'], { cwd: main, env: noAddon }).json().snapshot_id as string;
    const healthy = jvs(['doctor'], { cwd: main, env: noAddon });
    expect(healthy.stdout + healthy.stderr).toContain('Repository is healthy.');
    expect(healthy.code).toBe(0);

    fs.appendFileSync(path.join(dir, 'r/.jvs/snapshots', id, 'f3.txt'), 'tampered\n');
    const caught = jvs(['doctor', '--json'], { cwd: main, env: noAddon });
    expect(caught.code).not.toBe(0);
    expect(JSON.stringify(caught.json())).toContain('payload files changed since publish');
    expect(JSON.stringify(caught.json())).toContain('f3.txt');
  });
});

import { describe, expect, it } from 'vitest';
import { jvs, jvsOk } from '../helpers/cli.js';
import { checkInvocation, commandTree, invocations } from '../helpers/commandCheck.js';
import { tmpDir, writeFiles } from '../helpers/tmp.js';
import path from 'node:path';

/** The E_AMBIGUOUS_REF hint: every command it names exists, with options that exist. */
describe('E_AMBIGUOUS_REF', () => {
  it('lists the candidates and its hint names only real commands and options', () => {
    const dir = tmpDir();
    jvsOk(['init', 'repo'], { cwd: dir });
    const main = path.join(dir, 'repo/main');
    const ids: string[] = [];
    for (const i of [1, 2]) {
      writeFiles(main, { f: String(i) });
      ids.push(jvsOk(['snapshot', `nightly build ${i}`, '--json'], { cwd: main }).json().snapshot_id);
    }
    const tree = commandTree();
    for (const ref of ['nightly', ids[0]!.slice(0, 4)]) {
      const r = jvs(['restore', ref, '--json'], { cwd: main });
      expect(r.code).toBe(3);
      const err = r.json().error;
      expect(err.class).toBe('E_AMBIGUOUS_REF');
      expect(err.message).toContain(ids[0]!.slice(0, 8));
      const named = [...err.hint.matchAll(/`([^`]+)`/g)].flatMap((m) => invocations(m[1]!));
      expect(named.length, err.hint).toBeGreaterThan(0);
      for (const args of named) expect(checkInvocation(tree, args).problems, `${err.hint}`).toEqual([]);
      expect(err.hint).not.toContain('-i');
    }
  });
});

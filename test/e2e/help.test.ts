import { describe, expect, it } from 'vitest';
import { EXAMPLES } from '../../src/cli/helpExamples.js';
import { jvsOk } from '../helpers/cli.js';
import { allPaths, checkInvocation as check, commandTree as tree, invocations, words } from '../helpers/commandCheck.js';
import { tmpDir } from '../helpers/tmp.js';

describe('help', () => {
  it('every command, group and subcommand has examples in its --help', () => {
    const root = tree();
    const missing = allPaths(root).filter((p) => !EXAMPLES[p]?.length);
    expect(missing).toEqual([]);
  });

  it('every example names real commands and options, and runs the command it is listed under', () => {
    const root = tree();
    const problems: string[] = [];
    const known = new Set(allPaths(root));
    for (const [key, examples] of Object.entries(EXAMPLES)) {
      if (!known.has(key)) continue; // not built yet: shown nowhere
      for (const [line] of examples) {
        const calls = invocations(line);
        if (!calls.length) problems.push(`${key}: "${line}" does not run jvs`);
        for (const args of calls) {
          const r = check(root, args);
          problems.push(...r.problems.map((p) => `${key}: "${line}": ${p}`));
          if (key !== '' && !(r.path === key || r.path.startsWith(`${key} `))) problems.push(`${key}: "${line}" runs "jvs ${r.path}"`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('jvs --help lists the commands, the examples and the completion command', () => {
    const out = jvsOk(['--help'], { cwd: tmpDir() }).stdout;
    expect(out).toContain('Examples:');
    expect(out).toContain('jvs init game --template unity');
    expect(out).toMatch(/^\s+completion (\[options\] )?\[shell\]/m);
    expect(out).toContain('docs/quickstart-games.md');
  });

  it('per-command help ends with that command\'s examples', () => {
    const dir = tmpDir();
    const snap = jvsOk(['snapshot', '--help'], { cwd: dir }).stdout;
    expect(snap).toMatch(/Examples:\n[\s\S]*jvs snapshot "art pass" --paths Assets ProjectSettings/);
    const fork = jvsOk(['worktree', 'fork', '--help'], { cwd: dir }).stdout;
    expect(fork).toContain('jvs worktree fork v1 hotfix');
    expect(fork).not.toContain('jvs snapshot "first playable"');
  });

  it('init --help lists the templates that ship in templates/', () => {
    const out = jvsOk(['init', '--help'], { cwd: tmpDir() }).stdout;
    expect(out).toContain('Templates: node, python, unity, unreal');
  });

  it('the example checker rejects an unknown option and a wrong command (it can fail)', () => {
    const root = tree();
    expect(check(root, words('snapshot "x" --no-such-flag')).problems).toHaveLength(1);
    expect(check(root, words('worktree frok a')).problems[0]).toContain('"frok" is not a subcommand');
    expect(check(root, words('snapshot -t v1 "note" -- a b')).problems).toEqual([]);
    expect(invocations('cd "$(jvs worktree path hotfix)"')).toEqual([['worktree', 'path', 'hotfix']]);
  });
});

import { describe, expect, it } from 'vitest';
import { EXAMPLES } from '../../src/cli/helpExamples.js';
import type { CommandSpec } from '../../src/cli/commands/completionCommands.js';
import { jvsOk } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

/** The live command tree, as the completion generator sees it. */
function tree(): CommandSpec {
  return jvsOk(['completion', 'bash', '--json'], { cwd: tmpDir() }).json().commands;
}

function allPaths(root: CommandSpec): string[] {
  const out: string[] = [];
  const walk = (c: CommandSpec, p: string) => {
    out.push(p);
    for (const s of c.commands) walk(s, p ? `${p} ${s.name}` : s.name);
  };
  walk(root, '');
  return out;
}

/** Split a shell word list, honouring single and double quotes. */
function words(s: string): string[] {
  const out: string[] = [];
  for (const m of s.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** Every `jvs …` invocation inside an example line (also inside `$(…)` and after `&&`). */
function invocations(line: string): string[][] {
  return [...line.matchAll(/(?:^|[\s(])jvs((?:\s+(?:"[^"]*"|'[^']*'|[^\s;&|)>]+))*)/g)].map((m) => words(m[1]!));
}

/** Walk the arguments as commander would; return the command path and any unknown option. */
function check(root: CommandSpec, args: string[]): { path: string; problems: string[] } {
  const problems: string[] = [];
  let cur = root;
  const path: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a.startsWith('-') && a !== '-') {
      const flag = a.split('=')[0]!;
      const opt = [...cur.options, ...root.options].find((o) => o.flags.includes(flag));
      if (!opt) problems.push(`unknown option ${flag} for "jvs ${path.join(' ')}"`);
      else if (opt.takesValue && !a.includes('=')) i++;
      continue;
    }
    const sub = cur.commands.find((c) => c.name === a);
    if (sub) {
      cur = sub;
      path.push(a);
    } else if (cur.commands.length) problems.push(`"${a}" is not a subcommand of "jvs ${path.join(' ')}"`);
  }
  return { path: path.join(' '), problems };
}

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
    expect(out).toMatch(/^\s+completion \[shell\]/m);
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

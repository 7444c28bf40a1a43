import type { CommandSpec } from '../../src/cli/commands/completionCommands.js';
import { jvsOk } from './cli.js';
import { tmpDir } from './tmp.js';

/**
 * Checks that a written `jvs …` command line names real commands and options, against
 * the live command tree (the one `jvs completion` is generated from). Used for help
 * examples and for documents whose commands cannot run here (Docker).
 */
export function commandTree(): CommandSpec {
  return jvsOk(['completion', 'bash', '--json'], { cwd: tmpDir() }).json().commands;
}

export function allPaths(root: CommandSpec): string[] {
  const out: string[] = [];
  const walk = (c: CommandSpec, p: string) => {
    out.push(p);
    for (const s of c.commands) walk(s, p ? `${p} ${s.name}` : s.name);
  };
  walk(root, '');
  return out;
}

/** Split a shell word list, honouring single and double quotes. */
export function words(s: string): string[] {
  const out: string[] = [];
  for (const m of s.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** Every `jvs …` invocation in a shell line (also inside `$(…)` and after `&&`, `;`, `|`). */
export function invocations(line: string): string[][] {
  return [...line.matchAll(/(?:^|[\s(;&|])jvs((?:[ \t]+(?:"[^"]*"|'[^']*'|[^\s;&|)>]+))*)/g)].map((m) => words(m[1]!));
}

/** Walk the arguments as commander would; return the command path and any unknown option or command. */
export function checkInvocation(root: CommandSpec, args: string[]): { path: string; problems: string[] } {
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
  if (path.length === 0 && !args.some((a) => a.startsWith('-'))) problems.push('no command given');
  return { path: path.join(' '), problems };
}

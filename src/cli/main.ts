import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { JvsError } from '../errors.js';
import { printError, printResult, type CommandOutput, type GlobalOptions } from './output.js';
import type { Registrar } from './registry.js';
import { registerCoreCommands } from './commands/registerCore.js';
import { registerWorktreeCommands } from './commands/registerWorktree.js';
import { registerCompletionCommands } from './commands/registerCompletion.js';
import { registerMountCommands } from './commands/registerMount.js';
import { registerIntegrityCommands } from './commands/registerIntegrity.js';
import { registerStatusCommands } from './commands/registerStatus.js';
import { applyHelpExamples } from './helpExamples.js';
import { tracePhase } from '../trace.js';
import { argvWithBytes } from './rawArgs.js';
import { outputPreferences } from '../config/configOps.js';

/** Each command group registers itself; add a group by adding its registrar here. */
const REGISTRARS: Registrar[] = [registerCoreCommands, registerWorktreeCommands, registerCompletionCommands, registerMountCommands, registerIntegrityCommands, registerStatusCommands];

const require = createRequire(import.meta.url);
const VERSION = (require('../../package.json') as { version: string }).version;

/**
 * The global options in force: flags first, then `output_format` / `progress_enabled`
 * from the repository's config.yaml, then the built-in defaults (text, bars on a TTY).
 */
async function globalsOf(program: Command, argv: string[]): Promise<GlobalOptions> {
  const o = program.opts<{ json?: boolean; color?: boolean; progress?: boolean; debug?: boolean; quiet?: boolean; wait?: string | boolean; worktree?: string }>();
  const jsonFlag = argv.includes('--no-json') ? false : o.json || argv.includes('--json') ? true : undefined;
  const prefs = jsonFlag === undefined || o.progress === undefined ? await outputPreferences(process.cwd()) : {};
  // Lock waits are the default (DESIGN section 5); `--wait <s>` bounds them, `--no-wait` fails at once.
  let waitMs = Infinity;
  if (o.wait === false) waitMs = 0;
  else if (typeof o.wait === 'string') {
    const s = Number(o.wait);
    if (!Number.isFinite(s) || s < 0) throw new JvsError('E_USAGE', `--wait takes seconds, got ${JSON.stringify(o.wait)}`, { hint: 'e.g. `--wait 30`, or `--wait` alone to wait as long as it takes' });
    waitMs = s * 1000;
  }
  return {
    json: jsonFlag ?? prefs.json ?? false,
    color: o.color !== false && !process.env.NO_COLOR && !!process.stdout.isTTY,
    progress: o.progress ?? prefs.progress ?? true,
    debug: !!o.debug,
    quiet: !!o.quiet,
    waitMs,
    ...(o.worktree ? { worktree: o.worktree } : {}),
  };
}

function earlyGlobals(argv: string[]): GlobalOptions {
  return { json: argv.includes('--json'), color: false, progress: false, debug: argv.includes('--debug'), quiet: false, waitMs: 0 };
}

/**
 * `jvs history | head`: a reader that stops early closes the pipe. Node reports that as
 * an unhandled EPIPE error (a stack trace, exit 1); the output is simply dropped
 * instead and the command finishes what it was doing (a snapshot is not cut short
 * because its progress bar's terminal went away).
 */
function dropOutputToClosedPipes(): void {
  for (const s of [process.stdout, process.stderr]) {
    if (s.listenerCount('error') > 0) continue;
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    });
  }
}

/** Global options that take a value in the next word (`--wait` only when it looks like seconds). */
const VALUE_OPTIONS = new Set(['-w', '--worktree']);

/**
 * Commander answers `jvs nosuch --help`, `jvs help nosuch` and `jvs gc nosuch --help`
 * with the parent's help and exit 0, which tells a script the command exists. Walk the
 * command words first, as the reference does, and refuse an unknown one with E_USAGE.
 */
export function unknownCommand(program: Command, argv: string[]): JvsError | undefined {
  let cmd = program;
  let helpWord = false;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (VALUE_OPTIONS.has(a)) i++;
      else if (a === '--wait' && /^\d+(\.\d+)?$/.test(argv[i + 1] ?? '')) i++;
      continue;
    }
    if (!cmd.commands.length) break; // a leaf: the rest are its arguments
    if (a === 'help' && !helpWord && !cmd.commands.some((c) => c.name() === 'help')) {
      helpWord = true;
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (!sub) {
      const where = names.length ? `jvs ${names.join(' ')}` : 'jvs';
      const near = nearestName(a, cmd.commands.map((c) => c.name()));
      return new JvsError('E_USAGE', `unknown command '${[...names, a].join(' ')}'`, {
        hint: `${near ? `did you mean \`${where} ${near}\`? ` : ''}run \`${where} --help\` to list the commands`,
      });
    }
    names.push(a);
    cmd = sub;
  }
  return undefined;
}

/**
 * The command name a mistyped word most likely meant (`unmount` → `umount`, `snapshto` →
 * `snapshot`): the one at the smallest edit distance, if that is at most 2; undefined
 * when none is that close, when two are equally close, or for words under 3 letters.
 */
export function nearestName(word: string, names: readonly string[]): string | undefined {
  if (word.length < 3) return undefined;
  let best: string | undefined;
  let bestD = 3;
  let tie = false;
  for (const n of names) {
    if (n === 'help') continue;
    const d = editDistance(word, n);
    if (d < bestD) [best, bestD, tie] = [n, d, false];
    else if (d === bestD) tie = true;
  }
  return tie ? undefined : best;
}

/** Levenshtein distance (insertions, deletions, substitutions; a swap of neighbours counts 1). */
function editDistance(a: string, b: string): number {
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur.push(d);
    }
    [prev2, prev] = [prev, cur];
  }
  return prev[b.length]!;
}

export async function main(argvIn: string[]): Promise<number> {
  tracePhase('cli: loaded');
  const argv = argvWithBytes(argvIn);
  dropOutputToClosedPipes();
  const program = new Command('jvs');
  let exitCode = 0;
  let globals: GlobalOptions | undefined;
  const run =
    <A extends unknown[]>(fn: (g: GlobalOptions, ...args: A) => Promise<CommandOutput>) =>
    async (...args: A) => {
      tracePhase('cli: parsed');
      const g = (globals = await globalsOf(program, argv));
      exitCode = printResult(await fn(g, ...args), g);
    };
  program
    .description('JVS — Juicy Versioned Workspaces: snapshot, restore and fork whole workspaces')
    .version(VERSION, '-V, --version', 'print the version')
    .option('--json', 'print exactly one JSON document on stdout')
    .option('--no-json', 'human-readable output even where config.yaml sets output_format: json')
    .option('--no-color', 'no colours (also NO_COLOR)')
    .option('--progress', 'progress bars on a terminal even where config.yaml sets progress_enabled: false')
    .option('--no-progress', 'no progress bars')
    .option('-q, --quiet', 'print nothing on success')
    .option('--debug', 'print stack traces with errors')
    .option('--wait [seconds]', 'wait at most this long for a busy lock (the default is to wait as long as it takes)')
    .option('--no-wait', 'fail at once with E_LOCKED when a lock is busy')
    .option('-w, --worktree <name>', 'act on this worktree (default: the one the current folder is in, else main)')
    .showHelpAfterError('(run `jvs --help` or `jvs <command> --help` for usage)')
    .exitOverride();
  for (const register of REGISTRARS) register(program, run);
  applyHelpExamples(program);

  const json = argv.includes('--json');
  // In --json mode commander's own messages stay off stderr; the envelope reports them.
  const output = {
    writeErr: (s: string) => {
      if (!json) process.stderr.write(s);
    },
    outputError: (s: string, write: (s: string) => void) => {
      if (!json) write(s);
    },
  };
  (function quiet(c: Command) {
    c.exitOverride();
    c.configureOutput(output);
    c.commands.forEach(quiet);
  })(program);

  try {
    const unknown = unknownCommand(program, argv);
    if (unknown) throw unknown;
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      const msg = e.message.replace(/^error: /, '');
      // Commander printed its own message (with the help pointer) in human mode.
      if (json) return printError(new JvsError('E_USAGE', msg, { hint: 'run `jvs --help` for usage' }), earlyGlobals(argv));
      return 2;
    }
    return printError(e, globals ?? earlyGlobals(argv));
  }
}

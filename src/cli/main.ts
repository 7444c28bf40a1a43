import { Command, CommanderError, Option } from 'commander';
import { createRequire } from 'node:module';
import { JvsError } from '../errors.js';
import { printError, printResult, type CommandOutput, type GlobalOptions } from './output.js';

const require = createRequire(import.meta.url);
const VERSION = (require('../../package.json') as { version: string }).version;

function globalsOf(program: Command, argv: string[]): GlobalOptions {
  const o = program.opts<{ json?: boolean; color?: boolean; progress?: boolean; debug?: boolean; quiet?: boolean; wait?: string | boolean; worktree?: string }>();
  let waitMs = 0;
  if (o.wait === true) waitMs = 24 * 3600 * 1000;
  else if (typeof o.wait === 'string') {
    const s = Number(o.wait);
    if (!Number.isFinite(s) || s < 0) throw new JvsError('E_USAGE', `--wait takes seconds, got ${JSON.stringify(o.wait)}`, { hint: 'e.g. `--wait 30`, or `--wait` alone to wait as long as it takes' });
    waitMs = s * 1000;
  }
  return {
    json: !!o.json || argv.includes('--json'),
    color: o.color !== false && !process.env.NO_COLOR && !!process.stdout.isTTY,
    progress: o.progress !== false,
    debug: !!o.debug,
    quiet: !!o.quiet,
    waitMs,
    ...(o.worktree ? { worktree: o.worktree } : {}),
  };
}

function earlyGlobals(argv: string[]): GlobalOptions {
  return { json: argv.includes('--json'), color: false, progress: false, debug: argv.includes('--debug'), quiet: false, waitMs: 0 };
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('jvs');
  let exitCode = 0;
  const run =
    <A extends unknown[]>(fn: (g: GlobalOptions, ...args: A) => Promise<CommandOutput>) =>
    async (...args: A) => {
      const g = globalsOf(program, argv);
      exitCode = printResult(await fn(g, ...args), g);
    };
  const lazy = <M, K extends keyof M>(load: () => Promise<M>, name: K) =>
    (async (g: GlobalOptions, ...rest: unknown[]) => ((await load())[name] as (...a: unknown[]) => Promise<CommandOutput>)(g, ...rest)) as (g: GlobalOptions, ...rest: any[]) => Promise<CommandOutput>;
  const repoCmd = () => import('./commands/repoCommands.js');
  const wtCmd = () => import('./commands/worktreeCommands.js');

  program
    .description('JVS — Juicy Versioned Workspaces: snapshot, restore and fork whole workspaces')
    .version(VERSION, '-V, --version', 'print the version')
    .option('--json', 'print exactly one JSON document on stdout')
    .option('--no-color', 'no colours (also NO_COLOR)')
    .option('--no-progress', 'no progress bars')
    .option('-q, --quiet', 'print nothing on success')
    .option('--debug', 'print stack traces with errors')
    .option('--wait [seconds]', 'wait for the repository lock instead of failing with E_LOCKED')
    .option('-w, --worktree <name>', 'act on this worktree (default: the one the current folder is in, else main)')
    .showHelpAfterError('(run `jvs --help` or `jvs <command> --help` for usage)')
    .exitOverride();

  program.command('init').argument('[name]', 'folder to create the repository in').description('create a repository (payload in <name>/main)').action(run(lazy(repoCmd, 'runInit')));
  program.command('info').description('show repository facts (format, engine, counts)').action(run(lazy(repoCmd, 'runInfo')));
  program
    .command('snapshot')
    .argument('[note]', 'what this snapshot is')
    .description('take a snapshot of the worktree')
    .addOption(new Option('-t, --tag <tag>', 'tag the snapshot (repeatable)').argParser((v: string, prev: string[] = []) => [...prev, v]))
    .option('-F, --file <file>', 'read the note from a file (- for stdin)')
    .action(run(lazy(repoCmd, 'runSnapshot')));
  program
    .command('history')
    .description('list snapshots, newest first')
    .option('-n, --limit <n>', 'show at most n snapshots')
    .option('--grep <text>', 'only snapshots whose note contains text (case-insensitive)')
    .option('--tag <tag>', 'only snapshots carrying tag')
    .option('--all', 'every snapshot of the repository, not only this worktree\'s lineage')
    .action(run(lazy(repoCmd, 'runHistory')));
  program
    .command('restore')
    .argument('[ref]', 'snapshot id, unique id prefix, tag, note prefix or HEAD')
    .option('--latest-tag <tag>', 'restore the newest snapshot carrying tag')
    .description('bring the worktree to a snapshot (only what differs is rewritten)')
    .action(run(lazy(repoCmd, 'runRestore')));
  program
    .command('verify')
    .argument('[ref]', 'snapshot to verify (default: the head)')
    .option('--all', 'verify every snapshot and the audit chain')
    .description('check descriptor checksums and payload hashes')
    .action(run(lazy(repoCmd, 'runVerify')));

  const wt = program.command('worktree').description('create, fork, list, rename and remove worktrees');
  wt.command('fork').argument('[ref]').argument('[name]').description('new worktree from a snapshot (default: the current head)').action(run(lazy(wtCmd, 'runWorktreeFork')));
  wt.command('create').argument('[name]').option('--from <ref>', 'start from this snapshot').description('new worktree, empty or --from a snapshot').action(run(lazy(wtCmd, 'runWorktreeCreate')));
  wt.command('list').description('list worktrees').action(run(lazy(wtCmd, 'runWorktreeList')));
  wt.command('path').argument('[name]').description('print the payload folder of a worktree').action(run(lazy(wtCmd, 'runWorktreePath')));
  wt.command('rename').argument('[old]').argument('[new]').description('rename a worktree').action(run(lazy(wtCmd, 'runWorktreeRename')));
  wt.command('remove').argument('[name]').option('-f, --force', 'remove even with changes not in a snapshot').description('remove a worktree').action(run(lazy(wtCmd, 'runWorktreeRemove')));

  const json = argv.includes('--json');
  program.configureOutput({
    writeErr: (s) => {
      if (!json) process.stderr.write(s);
    },
    outputError: (s, write) => {
      if (!json) write(s);
    },
  });
  program.commands.forEach(function quiet(c: Command) {
    c.exitOverride();
    c.configureOutput({ writeErr: (s) => { if (!json) process.stderr.write(s); }, outputError: (s, write) => { if (!json) write(s); } });
    c.commands.forEach(quiet);
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      const msg = e.message.replace(/^error: /, '');
      if (json) return printError(new JvsError('E_USAGE', msg, { hint: 'run `jvs --help` for usage' }), earlyGlobals(argv));
      return 2;
    }
    return printError(e, earlyGlobals(argv));
  }
}

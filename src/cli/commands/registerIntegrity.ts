import type { Command } from 'commander';
import { lazy, type Runner } from '../registry.js';

const cmds = () => import('./integrityCommands.js');

export function registerIntegrityCommands(program: Command, run: Runner): void {
  program
    .command('doctor')
    .option('--strict', 're-hash every snapshot and check the audit chain end to end')
    .option('--repair-runtime', 'repair what interrupted operations left behind')
    .option('--repair-list', 'list the repairs doctor can make')
    .description('check repository health and repair interrupted operations')
    .action(run(lazy(cmds, 'runDoctor')));

  const gc = program.command('gc').description('delete unprotected snapshots in two phases: plan, then run');
  gc.command('plan').option('--keep <n>', 'keep the n newest snapshots of each line; older ones may go').option('--within <duration>', 'keep snapshots younger than this (e.g. 30d); older ones may go').option('--include-tagged', 'tagged snapshots may go too (kept by default)').description('compute what may be deleted (deletes nothing)').action(run(lazy(cmds, 'runGcPlan')));
  gc.command('run').option('--plan-id <id>', 'the plan to run (from `jvs gc plan`)').description('delete the snapshots of a plan, after checking it still holds').action(run(lazy(cmds, 'runGcRun')));
  gc.command('pin').argument('[ref]', 'snapshot to protect').option('--reason <text>', 'why it is kept').option('--expires <when>', 'duration (30d) or time when the pin lapses').description('protect a snapshot from gc').action(run(lazy(cmds, 'runGcPin')));
  gc.command('unpin').argument('[ref]', 'pinned snapshot').description('remove a pin').action(run(lazy(cmds, 'runGcUnpin')));

  program
    .command('diff')
    .argument('[from]', 'snapshot (default: the worktree head)')
    .argument('[to]', 'snapshot (default: the live worktree)')
    .option('--stat', 'only the counts')
    .description('show what was added, removed and modified between two states')
    .action(run(lazy(cmds, 'runDiff')));

  const config = program.command('config').description('show and change .jvs/config.yaml');
  config.command('show').description('every setting with the value in force').action(run(lazy(cmds, 'runConfigShow')));
  config.command('get').argument('[key]', 'setting, e.g. retention.keep').description('print one setting').action(run(lazy(cmds, 'runConfigGet')));
  config.command('set').argument('[key]', 'setting, e.g. default_engine').argument('[value]', 'new value (read as YAML)').description('change one setting').action(run(lazy(cmds, 'runConfigSet')));
}

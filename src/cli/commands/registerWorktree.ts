import type { Command } from 'commander';
import { lazy, type Runner } from '../registry.js';

const cmds = () => import('./worktreeCommands.js');

export function registerWorktreeCommands(program: Command, run: Runner): void {
  const wt = program.command('worktree').description('create, fork, list, rename and remove worktrees');
  wt.command('fork').argument('[ref]').argument('[name]').description('new worktree from a snapshot (default: the current head)').action(run(lazy(cmds, 'runWorktreeFork')));
  wt.command('create').argument('[name]').option('--from <ref>', 'start from this snapshot').description('new worktree, empty or --from a snapshot').action(run(lazy(cmds, 'runWorktreeCreate')));
  wt.command('list').description('list worktrees').action(run(lazy(cmds, 'runWorktreeList')));
  wt.command('path').argument('[name]').description('print the payload folder of a worktree').action(run(lazy(cmds, 'runWorktreePath')));
  wt.command('rename').argument('[old]').argument('[new]').description('rename a worktree').action(run(lazy(cmds, 'runWorktreeRename')));
  wt.command('remove').argument('[name]').option('-f, --force', 'remove even with changes not in a snapshot').description('remove a worktree').action(run(lazy(cmds, 'runWorktreeRemove')));
}

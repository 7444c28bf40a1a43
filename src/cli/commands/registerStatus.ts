import type { Command } from 'commander';
import { lazy, type Runner } from '../registry.js';

const cmds = () => import('./statusCommands.js');

export function registerStatusCommands(program: Command, run: Runner): void {
  program.command('status').description('show what changed in the worktree since its head snapshot').action(run(lazy(cmds, 'runStatus')));
}

import { Argument, type Command } from 'commander';
import type { Runner } from '../registry.js';

export function registerCompletionCommands(program: Command, run: Runner): void {
  program
    .command('completion')
    .addArgument(new Argument('[shell]', 'bash, zsh or fish').choices(['bash', 'zsh', 'fish']))
    .description('print a shell completion script generated from the command tree')
    // The generator walks the whole program, so it is handed the root command.
    .action(run(async (g, shell: string | undefined) => (await import('./completionCommands.js')).runCompletion(g, program, shell)));
}

import { Argument, Option, type Command } from 'commander';
import type { Runner } from '../registry.js';

export function registerCompletionCommands(program: Command, run: Runner): void {
  program
    .command('completion')
    .addArgument(new Argument('[shell]', 'bash, zsh or fish').choices(['bash', 'zsh', 'fish']))
    .description('print a shell completion script generated from the command tree')
    // Used by the generated scripts to complete worktree names and refs.
    .addOption(new Option('--names <kind>', 'print worktree names or refs, one per line').hideHelp())
    // The generator walks the whole program, so it is handed the root command.
    .action(run(async (g, shell: string | undefined, o: { names?: string }) => (await import('./completionCommands.js')).runCompletion(g, program, shell, o)));
}

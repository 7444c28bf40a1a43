import { Option, type Command } from 'commander';
import { lazy, type Runner } from '../registry.js';

const cmds = () => import('./repoCommands.js');

export function registerCoreCommands(program: Command, run: Runner): void {

  program
    .command('init')
    .argument('[name]', 'folder to create the repository in')
    .option('--template <t>', 'write main/.jvsignore from a template (unity, unreal, python, node); without a name, inside a repository: add its rules to this worktree\'s .jvsignore')
    .option('--here', 'make the current (existing) project folder a repository: its entries move into main/ by rename, nothing is copied')
    .option('--force', 'create the repository even inside another repository\'s folder')
    .description('create a repository (payload in <name>/main), or adopt a project folder with --here')
    .action(run(lazy(cmds, 'runInit')));
  program.command('info').description('show repository facts (format, engine, counts)').action(run(lazy(cmds, 'runInfo')));
  program
    .command('snapshot')
    .argument('[note]', 'what this snapshot is')
    .argument('[paths...]', 'after `--`: paths for a partial snapshot')
    .description('take a snapshot of the worktree')
    .option('--paths <paths...>', 'partial snapshot of these paths only (also after `--`)')
    .addOption(new Option('-t, --tag <tag>', 'tag the snapshot (repeatable)').argParser((v: string, prev: string[] = []) => [...prev, v]))
    .option('-F, --file <file>', 'read the note from a file (- for stdin)')
    .addOption(new Option('--compress <level>', 'store files gzip-compressed, in the layout the reference JVS reads').choices(['none', 'fast', 'default', 'max']))
    .action(run(lazy(cmds, 'runSnapshot')));
  program
    .command('history')
    .description('list snapshots, newest first')
    .option('-n, --limit <n>', 'show at most n snapshots')
    .option('--grep <text>', 'only snapshots whose note contains text (case-insensitive)')
    .option('--tag <tag>', 'only snapshots carrying tag')
    .option('--all', 'every snapshot of the repository, not only this worktree\'s lineage')
    .action(run(lazy(cmds, 'runHistory')));
  program
    .command('restore')
    .argument('[ref]', 'snapshot id, unique id prefix, tag, note prefix or HEAD')
    .option('--latest-tag <tag>', 'restore the newest snapshot carrying tag')
    .option('--discard-changes', 'do not keep unsaved changes as a snapshot first (they are lost)')
    .option('--dry-run', 'show what would be written, removed and kept; change nothing')
    .description('bring the worktree to a snapshot (only what differs is rewritten)')
    .action(run(lazy(cmds, 'runRestore')));
  program
    .command('verify')
    .argument('[ref]', 'snapshot to verify (default: the head)')
    .option('--all', 'verify every snapshot and the audit chain')
    .description('check descriptor checksums and payload hashes')
    .action(run(lazy(cmds, 'runVerify')));

}

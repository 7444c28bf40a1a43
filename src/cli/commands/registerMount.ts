import type { Command } from 'commander';
import { lazy, type Runner } from '../registry.js';

// Loaded only when a mount command runs: `jvs --version` never loads the FUSE addon.
const cmds = () => import('./mountCommands.js');

export function registerMountCommands(program: Command, run: Runner): void {
  program
    .command('mount')
    .argument('[mountpoint]', 'an empty folder outside the repository')
    .option('--daemon', 'detach and keep serving in the background')
    .option('--allow-other', 'let other users see the mount (needs user_allow_other in /etc/fuse.conf unless root)')
    .option('--xattrs', 'serve extended attributes (each write then costs one more FUSE round trip)')
    .description('show the worktree (current/), every snapshot (.jvs/snapshots/) and control files (.jvs/ctl/) as folders')
    .action(run(lazy(cmds, 'runMount')));
  program
    .command('umount')
    .argument('[mountpoint]')
    .option('--lazy', 'detach now even if programs still use the mount')
    .description('unmount a `jvs mount`')
    .action(run(lazy(cmds, 'runUmount')));
}

import { JvsError } from '../errors.js';
import { MAIN_WORKTREE } from '../repo/layout.js';
import { openRepo, type RepoContext } from '../repo/openRepo.js';
import { validateName } from '../repo/names.js';
import type { GlobalOptions } from './output.js';

export interface CommandContext extends RepoContext {
  /** The worktree the command acts on: --worktree, else the one the cwd is in, else main. */
  worktreeName: string;
}

export function commandContext(g: GlobalOptions): CommandContext {
  const repo = openRepo(process.cwd());
  const worktreeName = g.worktree ? validateName(g.worktree, 'worktree') : (repo.worktree ?? MAIN_WORKTREE);
  return { ...repo, worktreeName };
}

export function usage(message: string, hint: string): JvsError {
  return new JvsError('E_USAGE', message, { hint });
}

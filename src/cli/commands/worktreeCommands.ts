import { commandContext, usage } from '../context.js';
import type { CommandOutput, GlobalOptions } from '../output.js';
import { shownText, styles } from '../output.js';
import { cliReporter } from '../progressBar.js';

export async function runWorktreeFork(g: GlobalOptions, a: string | undefined, b: string | undefined): Promise<CommandOutput> {
  // `fork <name>` forks the current head; `fork <ref> <name>` a given snapshot.
  const [ref, name] = b === undefined ? [undefined, a] : [a, b];
  if (!name) throw usage('fork needs a name for the new worktree', 'e.g. `jvs worktree fork experiment` or `jvs worktree fork <ref> experiment`');
  return fork(g, name, ref, false);
}

export async function runWorktreeCreate(g: GlobalOptions, name: string | undefined, o: { from?: string }): Promise<CommandOutput> {
  if (!name) throw usage('create needs a name for the new worktree', 'e.g. `jvs worktree create scratch --from v1.0`');
  return fork(g, name, o.from, o.from === undefined);
}

async function fork(g: GlobalOptions, name: string, ref: string | undefined, empty: boolean): Promise<CommandOutput> {
  const ctx = commandContext(g);
  const { forkWorktree } = await import('../../worktree/forkWorktree.js');
  const r = await forkWorktree(ctx.layout, { name, ref, fromWorktree: ctx.worktreeName, empty, lockWaitMs: g.waitMs, reporter: cliReporter(g) });
  return {
    data: r,
    human: (r.snapshot_id
      ? [`Created worktree '${r.worktree}' from snapshot ${r.snapshot_id}`, `Path: ${r.path}`, 'Worktree is at HEAD state - you can create snapshots.']
      : [`Created worktree '${r.worktree}' at ${r.path}`, 'It is empty and has no snapshots yet.']).concat((r.degraded ?? []).map((d) => `${styles(g).yellow('warning')}: ${shownText(d)}`)),
  };
}

export async function runWorktreeList(g: GlobalOptions): Promise<CommandOutput> {
  const ctx = commandContext(g);
  const { listWorktrees } = await import('../../worktree/manageWorktrees.js');
  const list = listWorktrees(ctx.layout);
  return {
    data: { worktrees: list },
    human: list.map((w) => `${w.name === ctx.worktreeName ? '*' : ' '} ${w.name.padEnd(20)} ${(w.head_snapshot_id ?? '(no snapshots)').padEnd(22)} ${w.detached ? 'DETACHED ' : ''}${w.path}`),
  };
}

export async function runWorktreePath(g: GlobalOptions, name: string | undefined): Promise<CommandOutput> {
  const ctx = commandContext(g);
  const { worktreePath } = await import('../../worktree/manageWorktrees.js');
  const p = worktreePath(ctx.layout, name ?? ctx.worktreeName);
  return { data: { worktree: name ?? ctx.worktreeName, path: p }, human: [p] };
}

export async function runWorktreeRename(g: GlobalOptions, from: string | undefined, to: string | undefined): Promise<CommandOutput> {
  if (!from || !to) throw usage('rename needs the old and the new name', 'e.g. `jvs worktree rename exp1 exp-final`');
  const ctx = commandContext(g);
  const { renameWorktree } = await import('../../worktree/manageWorktrees.js');
  const r = renameWorktree(ctx.layout, from, to, g.waitMs);
  return { data: r, human: [`Renamed worktree '${r.from}' to '${r.to}'`] };
}

export async function runWorktreeRemove(g: GlobalOptions, name: string | undefined, o: { force?: boolean }): Promise<CommandOutput> {
  if (!name) throw usage('remove needs the worktree name', 'e.g. `jvs worktree remove exp1`');
  const ctx = commandContext(g);
  const { removeWorktree } = await import('../../worktree/manageWorktrees.js');
  const r = removeWorktree(ctx.layout, name, !!o.force, g.waitMs);
  return { data: { removed: r.name }, human: [`Removed worktree '${r.name}'`] };
}

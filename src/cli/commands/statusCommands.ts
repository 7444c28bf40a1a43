import { commandContext } from '../context.js';
import type { CommandOutput, GlobalOptions } from '../output.js';
import { shownName, styles, withPathBytes } from '../output.js';

const SHOW = 50;

export async function runStatus(g: GlobalOptions): Promise<CommandOutput> {
  const ctx = commandContext(g);
  const { status } = await import('../../status/status.js');
  const r = status(ctx.layout, ctx.worktreeName);
  const s = styles(g);
  const human = [
    `Worktree: ${r.worktree}`,
    `Head:     ${r.head_snapshot_id ?? '(no snapshots yet)'}${r.detached ? ` ${s.yellow('(DETACHED)')}` : ''}`,
  ];
  if (r.detached) human.push('Worktree is in DETACHED state: a snapshot here starts a new line (`jvs restore HEAD` returns to the latest).');
  if (r.compared_with) human.push(`The head is a partial snapshot: other paths are compared with ${r.compared_with.join(', ')}.`);
  if (r.clean) human.push('No changes since head.');
  else {
    human.push(`Changes since head: ${r.total_added} added, ${r.total_modified} modified, ${r.total_removed} removed`);
    const lines = [
      ...r.added.map((p) => `  ${s.green('added:   ')} ${shownName(p)}`),
      ...r.modified.map((p) => `  ${s.yellow('modified:')} ${shownName(p)}`),
      ...r.removed.map((p) => `  ${s.red('removed: ')} ${shownName(p)}`),
    ];
    human.push(...lines.slice(0, SHOW));
    if (lines.length > SHOW) human.push(`  … and ${lines.length - SHOW} more (\`jvs status --json\` lists all)`);
  }
  return { data: withPathBytes(r, [r.added, r.modified, r.removed]), human };
}

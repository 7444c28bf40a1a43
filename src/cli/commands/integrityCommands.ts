import { commandContext, usage } from '../context.js';
import type { CommandOutput, GlobalOptions } from '../output.js';
import { shownName, shownText, styles, withPathBytes } from '../output.js';
import { cliReporter } from '../progressBar.js';

/** Handlers for doctor, gc, diff and config: return data; main.ts prints. */

export async function runDoctor(g: GlobalOptions, o: { strict?: boolean; repairRuntime?: boolean; repairList?: boolean }): Promise<CommandOutput> {
  const { doctor, doctorFailure, repairList } = await import('../../doctor/doctor.js');
  if (o.repairList) {
    const list = repairList();
    return { data: { repairs: list }, human: list.map((r) => `${r.name.padEnd(14)} ${r.description}`) };
  }
  const ctx = commandContext(g);
  const r = await doctor(ctx.layout, { strict: o.strict, repairRuntime: o.repairRuntime, lockWaitMs: g.waitMs, reporter: cliReporter(g) });
  const s = styles(g);
  const human: string[] = [];
  for (const f of r.findings) {
    const tag = f.repaired ? s.green('repaired') : f.severity === 'warning' ? s.yellow('warning') : s.red(f.severity);
    human.push(`${tag} [${f.check}] ${shownText(f.message)}${f.path ? ` (${shownName(f.path)})` : ''}`);
    if (f.repaired) human.push(`  ${f.repair}: ${shownText(f.repair_result ?? '')}`);
    else if (f.repair_result) human.push(`  ${f.repair}: ${shownText(f.repair_result)}`);
    else if (f.repair) human.push(`  fix: \`jvs doctor --repair-runtime\` (${f.repair})`);
  }
  const error = doctorFailure(r);
  for (const p of r.pruned_parents) human.push(`${s.dim('info')} [lineage] snapshot ${p.snapshot_id}: parent ${p.parent_id} pruned by gc at ${p.deleted_at}`);
  if (!error) human.push('Repository is healthy.');
  return { data: r, human, ...(error ? { error } : {}) };
}

function wholeNumber(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw usage(`${flag} must be a whole number ≥ 0, got ${JSON.stringify(v)}`, `e.g. \`jvs gc plan ${flag} 10\``);
  return n;
}

export async function runGcPlan(g: GlobalOptions, o: { keep?: string; within?: string; includeTagged?: boolean }): Promise<CommandOutput> {
  const ctx = commandContext(g);
  const { planGc } = await import('../../gc/planGc.js');
  const r = await planGc(ctx.layout, { keep: wholeNumber(o.keep, '--keep'), within: o.within, includeTagged: o.includeTagged, lockWaitMs: g.waitMs, reporter: cliReporter(g) });
  const n = (k: number) => `${k} snapshot${k === 1 ? '' : 's'}`;
  // The reference's plan heading and lines, each with our detail after it.
  const human = [
    `GC Plan: ${r.plan_id}`,
    `  Protected: ${n(r.protected_set.length)} (heads ${r.protection.heads.length}, tagged ${r.protection.tags.length}, pins ${r.protected_by_pin}, retention ${r.protected_by_retention}, lineage ${r.protected_by_lineage}, intents ${r.protection.intents.length})`,
    `  To delete: ${n(r.candidate_count)}`,
    ...r.to_delete.map((id) => `    ${id}`),
    `  Estimated reclaim: ~${Math.floor(r.deletable_bytes_estimate / 1024 / 1024)} MB (${r.deletable_bytes_estimate} bytes)`,
    ...(r.candidate_count ? ['', `Run: jvs gc run --plan-id ${r.plan_id}`] : ['', 'Nothing to delete.']),
  ];
  return { data: r, human };
}

export async function runGcRun(g: GlobalOptions, o: { planId?: string }): Promise<CommandOutput> {
  if (!o.planId) throw usage('gc run needs --plan-id', 'run `jvs gc plan` first, then `jvs gc run --plan-id <plan_id>`');
  const ctx = commandContext(g);
  const { runGc } = await import('../../gc/runGc.js');
  const r = runGc(ctx.layout, { planId: o.planId, lockWaitMs: g.waitMs, reporter: cliReporter(g) });
  return {
    data: r,
    human: [
      `Deleted ${r.deleted.length} snapshot${r.deleted.length === 1 ? '' : 's'}${r.already_deleted.length ? ` (${r.already_deleted.length} already gone)` : ''}.`,
      'GC completed successfully.',
    ],
  };
}

export async function runGcPin(g: GlobalOptions, ref: string | undefined, o: { reason?: string; expires?: string }): Promise<CommandOutput> {
  if (!ref) throw usage('gc pin needs a snapshot ref', 'e.g. `jvs gc pin v1.0 --reason "release"`');
  const ctx = commandContext(g);
  const { pinSnapshot } = await import('../../gc/pins.js');
  const r = pinSnapshot(ctx.layout, { ref, worktree: ctx.worktreeName, reason: o.reason, expires: o.expires, lockWaitMs: g.waitMs });
  return { data: r, human: [`Pinned snapshot ${r.snapshot_id}${r.expires_at ? ` until ${r.expires_at}` : ''}`] };
}

export async function runGcUnpin(g: GlobalOptions, ref: string | undefined): Promise<CommandOutput> {
  if (!ref) throw usage('gc unpin needs a snapshot ref', 'e.g. `jvs gc unpin v1.0`');
  const ctx = commandContext(g);
  const { unpinSnapshot } = await import('../../gc/pins.js');
  const r = unpinSnapshot(ctx.layout, ref, g.waitMs, ctx.worktreeName);
  return { data: r, human: [`Unpinned snapshot ${r.snapshot_id}`] };
}

export async function runDiff(g: GlobalOptions, from: string | undefined, to: string | undefined, o: { stat?: boolean }): Promise<CommandOutput> {
  const ctx = commandContext(g);
  const { diff } = await import('../../diff/diff.js');
  const r = diff(ctx.layout, { worktree: ctx.worktreeName, from, to });
  const s = styles(g);
  const summary = `${r.total_added} added, ${r.total_removed} removed, ${r.total_modified} modified (${r.from_snapshot_id} → ${r.to_snapshot_id ?? `worktree '${r.to_worktree}'`})`;
  const human = o.stat
    ? [summary]
    : [...r.added.map((p) => s.green(`A ${shownName(p)}`)), ...r.removed.map((p) => s.red(`D ${shownName(p)}`)), ...r.modified.map((p) => s.yellow(`M ${shownName(p)}`)), summary];
  return { data: withPathBytes(r, [r.added, r.removed, r.modified]), human };
}

const render = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

export async function runConfigShow(g: GlobalOptions): Promise<CommandOutput> {
  const ctx = commandContext(g);
  const { showConfig } = await import('../../config/configOps.js');
  const r = await showConfig(ctx.layout);
  const set = new Set(Object.keys(r.effective).filter((k) => k.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown> | undefined)?.[p], r.settings) !== undefined));
  return {
    data: r,
    human: Object.entries(r.effective).map(([k, v]) => `${k} = ${render(v)}${set.has(k) ? '' : ' (default)'}`),
  };
}

export async function runConfigGet(g: GlobalOptions, key: string | undefined): Promise<CommandOutput> {
  if (!key) throw usage('config get needs a setting name', 'e.g. `jvs config get retention.keep` (`jvs config show` lists them)');
  const ctx = commandContext(g);
  const { getConfig } = await import('../../config/configOps.js');
  const r = await getConfig(ctx.layout, key);
  return { data: r, human: [render(r.value)] };
}

export async function runConfigSet(g: GlobalOptions, key: string | undefined, value: string | undefined): Promise<CommandOutput> {
  if (!key || value === undefined) throw usage('config set needs a setting name and a value', 'e.g. `jvs config set retention.keep 20`');
  const ctx = commandContext(g);
  const { setConfig } = await import('../../config/configOps.js');
  const r = await setConfig(ctx.layout, key, value, g.waitMs);
  return { data: r, human: [`Set ${r.key} = ${render(r.value)}`] };
}

import fs from 'node:fs';
import path from 'node:path';
import { JvsError } from '../../errors.js';
import type { Layout } from '../../repo/layout.js';
import { commandContext, usage } from '../context.js';
import type { CommandOutput, GlobalOptions } from '../output.js';
import { shownName, shownText, styles } from '../output.js';
import { cliReporter } from '../progressBar.js';

/** Handlers return data; main.ts prints and picks the exit code. */

export async function runInit(g: GlobalOptions, name: string | undefined, o: { template?: string; here?: boolean; force?: boolean } = {}): Promise<CommandOutput> {
  if (o.here) {
    if (name) throw usage('give either a name or --here, not both', 'e.g. `cd myproject && jvs init --here`');
    const { adoptFolder } = await import('../../init/adoptFolder.js');
    const r = adoptFolder(process.cwd(), { template: o.template, force: o.force });
    return {
      data: r,
      human: [
        `Initialized JVS repository in ${r.repo_root}`,
        `${r.resumed ? 'Finished an interrupted `jvs init --here`: ' : ''}Moved ${r.entries_moved} entr${r.entries_moved === 1 ? 'y' : 'ies'} into ${r.payload} by rename (nothing copied): your project is now at ${r.payload}.`,
        ...(r.template ? [`Wrote the ${r.template} template's rules into ${path.join(r.payload, '.jvsignore')} (${r.template_rules_added} added).`] : []),
        `Run \`jvs snapshot "first"\` (from ${r.repo_root} or inside main/) to take the first snapshot.`,
      ],
    };
  }
  if (!name && o.template) {
    // A template applied to the repository (worktree) the caller stands in.
    const ctx = commandContext(g);
    const { applyTemplate, readTemplate } = await import('../../init/templates.js');
    const payload = ctx.layout.payload(ctx.worktreeName);
    const r = applyTemplate(payload, o.template, readTemplate(o.template));
    const file = path.join(payload, '.jvsignore');
    return {
      data: { repo_root: ctx.layout.root, worktree: ctx.worktreeName, template: o.template, file, rules_added: r.added, created: r.created },
      human: [r.added ? `${r.created ? 'Wrote' : 'Added'} ${r.added} rule${r.added === 1 ? '' : 's'} from the ${o.template} template ${r.created ? 'to' : 'at the end of'} ${file}` : `${file} already has every rule of the ${o.template} template`],
    };
  }
  if (!name) throw usage('init needs the name (folder) of the new repository', 'e.g. `jvs init myproject`, or `jvs init --here` inside an existing project folder');
  const { initRepo } = await import('../../init/initRepo.js');
  const r = initRepo(name, { template: o.template, force: o.force });
  return {
    data: r,
    human: [
      `Initialized JVS repository in ${r.repo_root}`,
      ...(r.template ? [`Wrote ${path.join(r.payload, '.jvsignore')} from the ${r.template} template.`] : []),
      `Put your files in ${r.payload} and run \`jvs snapshot "first"\` there.`,
    ],
  };
}

export async function runInfo(g: GlobalOptions): Promise<CommandOutput> {
  const ctx = commandContext(g);
  const { info } = await import('../../info/info.js');
  const r = await info(ctx.layout, ctx.worktreeName);
  const w = r.worktree;
  return {
    data: r,
    human: [
      `Repository:     ${r.repo_root}`,
      `Repository id:  ${r.repo_id}`,
      `Format version: ${r.format_version}`,
      `Engine:         ${r.snapshot_engine} (${r.engine_source})`,
      `Snapshots:      ${r.total_snapshots}`,
      `Worktrees:      ${r.total_worktrees}`,
      ...(w ? [`Worktree:       ${w.name}${w.detached ? ' (DETACHED)' : ''}`, `Head:           ${w.head_snapshot_id ?? '(none)'}`] : []),
    ],
  };
}

export async function readNoteFile(file: string): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').replace(/\n+$/, '');
  }
  try {
    return fs.readFileSync(path.resolve(file), 'utf8').replace(/\n+$/, '');
  } catch {
    throw new JvsError('E_NOT_FOUND', `cannot read the note file ${file}`, { hint: 'pass an existing file to -F, or `-F -` to read the note from stdin' });
  }
}

export async function runSnapshot(
  g: GlobalOptions,
  noteArg: string | undefined,
  extra: string[],
  o: { tag?: string[]; file?: string; paths?: string[]; compress?: string },
): Promise<CommandOutput> {
  const ctx = commandContext(g);
  const { parseCompressLevel } = await import('../../format/compression.js');
  const compression = o.compress === undefined ? undefined : parseCompressLevel(o.compress);
  if (extra.length && !process.argv.includes('--')) {
    throw usage(`unexpected argument ${JSON.stringify(extra[0])}`, 'quote the note (`jvs snapshot "my note"`); partial paths go after --paths or `--`');
  }
  const paths = [...(o.paths ?? []), ...extra];
  if (noteArg !== undefined && o.file) throw usage('give the note either as an argument or with -F, not both', 'e.g. `jvs snapshot -F notes.txt`');
  const note = o.file ? await readNoteFile(o.file) : noteArg;
  const { createSnapshot } = await import('../../snapshot/createSnapshot.js');
  await reachMounts(ctx.layout, ctx.worktreeName, 'flush');
  const r = await createSnapshot(ctx.layout, { worktree: ctx.worktreeName, note, tags: o.tag ?? [], paths, cwd: process.cwd(), ...(compression ? { compression } : {}), lockWaitMs: g.waitMs, reporter: cliReporter(g) });
  const s = styles(g);
  return {
    data: r,
    human: [
      `Created snapshot ${s.bold(r.snapshot_id)}`,
      ...(r.tags.length ? [`Tags: ${r.tags.join(', ')}`] : []),
      ...(r.partial_paths ? [`Partial snapshot of: ${r.partial_paths.map(shownName).join(', ')}`] : []),
      ...(r.new_line
        ? [`Started a new line from ${r.new_line.from_snapshot_id}; the line it left ends at ${r.new_line.left_line_tip}${r.new_line.pinned ? ' (pinned, kept from gc)' : ''}: \`jvs history --all\` shows both.`]
        : []),
      ...r.degraded.map((d) => `${s.yellow('warning')}: ${shownText(d)}`),
    ],
  };
}

export async function runHistory(g: GlobalOptions, o: { limit?: string; grep?: string; tag?: string; all?: boolean }): Promise<CommandOutput> {
  const ctx = commandContext(g);
  let limit: number | undefined;
  if (o.limit !== undefined) {
    limit = Number(o.limit);
    if (!Number.isInteger(limit) || limit < 0) throw usage(`--limit must be a whole number, got ${JSON.stringify(o.limit)}`, 'e.g. `jvs history --limit 10`');
  }
  const { history, historyFailure } = await import('../../history/history.js');
  const r = history(ctx.layout, { worktree: ctx.worktreeName, all: o.all, limit, grep: o.grep, tag: o.tag });
  const s = styles(g);
  const human = r.snapshots.length
    ? r.snapshots.map((e) => {
        // HEAD is what `jvs restore HEAD` restores: the latest. A detached worktree's head
        // (the snapshot it was restored to) is marked apart.
        const marks = [e.is_latest ? 'HEAD' : '', e.is_head && !e.is_latest ? 'restored here, detached' : '', ...e.tags.map((t) => `tag: ${t}`), e.pinned ? 'pinned' : '', e.parent_pruned ? `parent ${e.parent_id} pruned by gc` : ''].filter(Boolean);
        const note = e.note ? e.note.split('\n')[0] : '';
        return `${s.yellow(e.snapshot_id)}  ${e.created_at}  ${o.all ? `[${e.worktree_name}] ` : ''}${note}${marks.length ? ` ${s.dim(`(${marks.join(', ')})`)}` : ''}`;
      })
    : r.damaged.length ? [] : [r.total === 0 && !o.grep && !o.tag ? 'No snapshots yet.' : 'No snapshots match.'];
  for (const d of r.damaged) human.push(`${s.red('DAMAGED')}  ${d.snapshot_id}: ${d.problem}`);
  if (r.truncated_at) human.push(s.dim(`(the line stops at ${r.truncated_at}: older snapshots of it cannot be listed until its descriptor is repaired)`));
  if (r.not_on_line) human.push(s.dim(`(${r.not_on_line} more snapshot${r.not_on_line === 1 ? '' : 's'} on other lines or worktrees: \`jvs history --all\`)`));
  return { data: r, human, error: historyFailure(r) };
}

/**
 * A `jvs mount` daemon serving this worktree (its socket in .jvs/tmp) writes back what
 * its kernel cache holds before we read the worktree, and drops what it cached after a
 * restore changed it. The module is loaded only when such a socket exists.
 */
async function reachMounts(layout: Layout, worktree: string, op: 'flush' | 'invalidate'): Promise<void> {
  let names: string[];
  try {
    names = fs.readdirSync(layout.tmp);
  } catch {
    return;
  }
  if (!names.some((n) => n.startsWith('.mount-') && n.endsWith(`-${worktree}.sock`))) return;
  const { notifyMounts } = await import('../../fuse/mountSocket.js');
  await notifyMounts(layout, worktree, op);
}

export async function runRestore(g: GlobalOptions, ref: string | undefined, o: { latestTag?: string; discardChanges?: boolean; dryRun?: boolean }): Promise<CommandOutput> {
  const ctx = commandContext(g);
  if (!ref && !o.latestTag) throw usage('restore needs a snapshot: an id, id prefix, tag, note prefix or HEAD', 'e.g. `jvs restore HEAD` or `jvs restore --latest-tag stable`');
  if (ref && o.latestTag) throw usage('give either a ref or --latest-tag, not both', 'e.g. `jvs restore --latest-tag stable`');
  const s = styles(g);
  const opts = { worktree: ctx.worktreeName, ref, latestTag: o.latestTag, discardChanges: !!o.discardChanges };
  const openWarnings = (files: Array<{ path: string; pid: number; command: string }> | undefined) =>
    (files ?? []).map((f) => `${s.yellow('warning')}: ${shownText(f.path)} is open in process ${f.pid} (${shownText(f.command)}); it keeps the old content until it reopens the file`);
  if (o.dryRun) {
    const { planRestore } = await import('../../restore/restoreSnapshot.js');
    const p = planRestore(ctx.layout, opts);
    const list = (label: string, xs: string[]) => [`${label}: ${xs.length}`, ...xs.slice(0, 50).map((x) => `  ${shownText(x)}`), ...(xs.length > 50 ? [`  … and ${xs.length - 50} more (\`--json\` lists all)`] : [])];
    const u = p.unsaved;
    return {
      data: p,
      human: [
        `Dry run: restoring ${p.snapshot_id} would change nothing yet.`,
        ...list('Would write', p.would_write),
        ...list('Would remove', p.would_remove),
        `Would keep: ${p.kept} entries already equal (ignored paths are never touched)`,
        u.action === 'none'
          ? 'Unsaved changes: none would be overwritten.'
          : `Unsaved changes: ${u.added.length} added, ${u.modified.length} modified; they would be ${u.action === 'keep' ? 'kept first as a snapshot tagged unsaved' : 'discarded (--discard-changes)'}`,
        ...(u.removed.length ? [`Removed since the head: ${u.removed.length} (their content stays in the head snapshot)`] : []),
        ...openWarnings(p.open_files),
      ],
    };
  }
  const { restoreSnapshot } = await import('../../restore/restoreSnapshot.js');
  await reachMounts(ctx.layout, ctx.worktreeName, 'flush');
  const r = await restoreSnapshot(ctx.layout, { ...opts, lockWaitMs: g.waitMs, reporter: cliReporter(g) }).finally(() =>
    reachMounts(ctx.layout, ctx.worktreeName, 'invalidate'),
  );
  const u = r.unsaved;
  return {
    data: r,
    human: [
      // The reference's lines first (scripts grep them), then what this implementation adds.
      `Restored to snapshot ${r.snapshot_id}`,
      r.detached ? 'Worktree is now in DETACHED state.' : 'Worktree is now at HEAD state.',
      ...(r.detached ? ['To continue working from here: jvs worktree fork <name>', 'To return to latest: jvs restore HEAD'] : []),
      ...(r.detached ? [`A snapshot here starts a new line from ${r.snapshot_id} (the line ending at ${r.latest_snapshot_id} is then kept, pinned).`] : []),
      ...(u
        ? [
            `Kept unsaved changes (${u.total_added} added, ${u.total_modified} modified, ${u.total_removed} removed) as snapshot ${s.bold(u.snapshot_id)} (tag: unsaved, pinned).`,
            `Bring them back with: ${u.restore_command}`,
          ]
        : []),
      ...openWarnings(r.open_files),
      ...(r.degraded ?? []).map((d) => `${s.yellow('warning')}: ${shownText(d)}`),
    ],
  };
}

export async function runVerify(g: GlobalOptions, ref: string | undefined, o: { all?: boolean }): Promise<CommandOutput> {
  const ctx = commandContext(g);
  if (ref && o.all) throw usage('give either a ref or --all, not both', 'e.g. `jvs verify --all`');
  const { verify, verifyFailure } = await import('../../verify/verify.js');
  const r = verify(ctx.layout, { ref, all: o.all, worktree: ctx.worktreeName, reporter: cliReporter(g) });
  const s = styles(g);
  const pruned = (x: (typeof r.results)[number]) => (x.parent_pruned ? s.dim(` (parent ${x.parent_pruned.snapshot_id} pruned by gc)`) : '');
  // The reference prints `<id>  OK` / `<id>  TAMPERED`; the problems follow its word.
  const human = r.results.map((x) => (x.severity === 'ok' ? `${x.snapshot_id}  ${s.green('OK')}${pruned(x)}` : `${x.snapshot_id}  ${s.red(x.tamper_detected ? 'TAMPERED' : 'DAMAGED')}: ${shownText(x.problems.join('; '))}`));
  for (const x of r.results) for (const w of x.warnings ?? []) human.push(`${s.yellow('warning')}  ${x.snapshot_id}: ${w}`);
  if (r.audit_legacy_lines?.length) human.push(`${s.yellow('warning')}  audit log: ${r.audit_legacy_lines.length} line${r.audit_legacy_lines.length === 1 ? '' : 's'} hashed by the legacy rule (accepted; see docs/integrity.md)`);
  if (r.audit_chain_valid === false) human.push(`audit log  ${s.red('TAMPERED')}: ${r.audit_problems!.map((p) => `line ${p.line}: ${p.problem}`).join('; ')}`);
  if (!r.results.length) human.push('No snapshots yet.');
  const error = verifyFailure(r);
  if (!error) human.push(`Verified ${r.checked} snapshot${r.checked === 1 ? '' : 's'}: no damage found.`);
  const data = o.all ? r : { ...r.results[0], results: r.results, severity: r.severity, tamper_detected: r.tamper_detected };
  return { data, human, ...(error ? { error } : {}) };
}

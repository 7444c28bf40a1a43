import { JvsError } from '../errors.js';
import type { Layout } from '../repo/layout.js';
import { isDetached, readWorktreeConfig } from '../repo/worktreeConfig.js';
import { ERRNO_OF_CLASS, errnoOf } from './errno.js';
import type { CtlName } from './router.js';

/** What a write to `.jvs/ctl/snapshot` asks for. */
export interface SnapshotRequest {
  note?: string;
  tags?: string[];
  paths?: string[];
}

/**
 * What a write to `.jvs/ctl/restore` asks for. Unsaved changes in `current/` are kept
 * as a snapshot first (as `jvs restore` does) unless `discardChanges` is set.
 */
export type RestoreRequest = ({ ref: string } | { latestTag: string }) & { discardChanges?: boolean };

const usage = (message: string, hint: string) => new JvsError('E_USAGE', message, { hint });

/**
 * One write is one request. Text is the note (one trailing newline dropped, so
 * `echo "msg" > ctl/snapshot` gives the note `msg`); text starting with `{` is a JSON
 * object with optional `note` (string), `tags` and `paths` (arrays of strings).
 */
export function parseSnapshotRequest(text: string): SnapshotRequest {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return { note: text.replace(/\r?\n$/, '') };
  let raw: unknown;
  try {
    raw = JSON.parse(trimmed);
  } catch (e) {
    throw usage(`the snapshot request is not valid JSON: ${(e as Error).message}`, 'write one line (the note) or a JSON object like {"note":"…","tags":["v1"],"paths":["Assets"]}');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw usage('the snapshot request must be a JSON object', 'e.g. {"note":"…","tags":["v1"]}');
  const o = raw as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !['note', 'tags', 'paths'].includes(k));
  if (unknown.length) throw usage(`unknown field(s) in the snapshot request: ${unknown.join(', ')}`, 'the fields are note, tags and paths');
  const strings = (k: 'tags' | 'paths'): string[] | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw usage(`"${k}" must be an array of strings`, `e.g. {"${k}":["${k === 'tags' ? 'v1' : 'Assets'}"]}`);
    return v as string[];
  };
  if (o.note !== undefined && typeof o.note !== 'string') throw usage('"note" must be a string', 'e.g. {"note":"after stage 2"}');
  const req: SnapshotRequest = {};
  if (typeof o.note === 'string') req.note = o.note;
  const tags = strings('tags');
  const paths = strings('paths');
  if (tags) req.tags = tags;
  if (paths) req.paths = paths;
  return req;
}

/** A ref on one line, or {"ref":…} / {"latest_tag":…}, optionally with "discard_changes": true. */
export function parseRestoreRequest(text: string): RestoreRequest {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(trimmed) as Record<string, unknown>;
    } catch (e) {
      throw usage(`the restore request is not valid JSON: ${(e as Error).message}`, 'write a ref (id, tag, note prefix or HEAD) or {"latest_tag":"…"}');
    }
    if (o?.discard_changes !== undefined && typeof o.discard_changes !== 'boolean') throw usage('"discard_changes" must be true or false', 'e.g. {"ref":"HEAD","discard_changes":true}');
    const discard = o?.discard_changes === true ? { discardChanges: true } : {};
    if (typeof o?.ref === 'string' && o.ref) return { ref: o.ref, ...discard };
    if (typeof o?.latest_tag === 'string' && o.latest_tag) return { latestTag: o.latest_tag, ...discard };
    throw usage('the restore request needs "ref" or "latest_tag"', 'e.g. {"ref":"HEAD"}');
  }
  if (!trimmed || trimmed.includes('\n')) throw usage('write one ref to restore', 'e.g. `echo HEAD > .jvs/ctl/restore`');
  return { ref: trimmed };
}

/** The JSON a control file shows for a finished request. */
export function resultDoc(ok: boolean, startedMs: number, body: Record<string, unknown> | unknown): Record<string, unknown> {
  const duration_ms = Date.now() - startedMs;
  if (ok) return { ok: true, ...(body as Record<string, unknown>), duration_ms };
  const err = body instanceof JvsError ? body : new JvsError('E_INTERNAL', String((body as Error)?.message ?? body));
  return { ok: false, error: err.toJSON(), errno: errnoOf(err) ?? ERRNO_OF_CLASS.E_INTERNAL, duration_ms };
}

export interface ControlDeps {
  layout: Layout;
  worktree: string;
  /** Runs a snapshot of the served worktree (the same operation as `jvs snapshot`). */
  snapshot(req: SnapshotRequest): Promise<Record<string, unknown>>;
  restore(req: RestoreRequest): Promise<Record<string, unknown>>;
  /** Engine that would materialise a snapshot now. */
  engineName(): string;
  /** What changed in the worktree since its head (the `jvs status` operation). */
  changes?(): Record<string, unknown>;
}

/**
 * The control files. Reading `snapshot`/`restore` gives the result of the last request
 * as JSON; `status` is computed when opened. Writes run the operation and return only
 * when it finished (durable), or fail with the errno of its error class.
 */
export class ControlFiles {
  private last: Record<'snapshot' | 'restore', { doc: Record<string, unknown>; atNs: bigint }>;
  private readonly startNs = BigInt(Date.now()) * 1_000_000n;
  /** How the kernel reaches the daemon (set by the libfuse 3 adapter), shown in `status`. */
  transport: (() => Record<string, unknown>) | undefined;

  constructor(private readonly deps: ControlDeps) {
    const none = (what: string) => ({ ok: null, message: `no request yet: write ${what} to this file` });
    this.last = {
      snapshot: { doc: none('a note (or {"note":…,"tags":[…],"paths":[…]})'), atNs: this.startNs },
      restore: { doc: none('a ref (id, tag, note prefix or HEAD)'), atNs: this.startNs },
    };
  }

  /** Content a reader sees when opening the file now. */
  content(name: CtlName): Buffer {
    if (name === 'status') return Buffer.from(JSON.stringify(this.status(), null, 2) + '\n');
    return Buffer.from(JSON.stringify(this.last[name].doc, null, 2) + '\n');
  }

  /** Size and time for getattr (status is generated: size 0, like /proc files). */
  stat(name: CtlName): { size: number; mtimeNs: bigint } {
    if (name === 'status') return { size: 0, mtimeNs: BigInt(Date.now()) * 1_000_000n };
    return { size: this.content(name).length, mtimeNs: this.last[name].atNs };
  }

  writable(name: CtlName): boolean {
    return name !== 'status';
  }

  /** Handle one write; resolves when the operation is durable, rejects with its error. */
  async request(name: CtlName, text: string): Promise<void> {
    if (name === 'status') throw new JvsError('E_USAGE', 'status is read-only', { hint: 'write to .jvs/ctl/snapshot or .jvs/ctl/restore' });
    const started = Date.now();
    try {
      const body = name === 'snapshot' ? await this.deps.snapshot(parseSnapshotRequest(text)) : await this.deps.restore(parseRestoreRequest(text));
      this.record(name, resultDoc(true, started, body));
    } catch (e) {
      this.record(name, resultDoc(false, started, e instanceof JvsError ? e : new JvsError('E_IO', (e as Error)?.message ?? String(e), { cause: e })));
      throw e;
    }
  }

  /** Record a request refused before it ran (e.g. too large); returns the error to throw. */
  refuse(name: CtlName, err: JvsError): JvsError {
    if (name !== 'status') this.record(name, resultDoc(false, Date.now(), err));
    return err;
  }

  private record(name: 'snapshot' | 'restore', doc: Record<string, unknown>): void {
    this.last[name] = { doc, atNs: BigInt(Date.now()) * 1_000_000n };
  }

  private changesOrError(): Record<string, unknown> {
    try {
      return this.deps.changes!();
    } catch (e) {
      return { error: e instanceof JvsError ? e.toJSON() : String(e) };
    }
  }

  status(): Record<string, unknown> {
    const { layout, worktree } = this.deps;
    try {
      const wt = readWorktreeConfig(layout, worktree);
      return {
        worktree,
        head_snapshot_id: wt.head_snapshot_id ?? null,
        latest_snapshot_id: wt.latest_snapshot_id ?? null,
        detached: isDetached(wt),
        engine: this.deps.engineName(),
        ...(this.transport ? { transport: this.transport() } : {}),
        ...(this.deps.changes ? { changes: this.changesOrError() } : {}),
        last_snapshot: this.last.snapshot.doc,
      };
    } catch (e) {
      return { worktree, error: e instanceof JvsError ? e.toJSON() : String(e) };
    }
  }
}

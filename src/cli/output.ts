import { EXIT_CODES, JvsError, NO_SPACE_CODES, fromSystemError } from '../errors.js';
import { nameBytes, nameForHumans, textForHumans } from '../format/nameBytes.js';

/**
 * Names and text on a terminal: a name that is not UTF-8 or holds control characters is
 * quoted and escaped (`"caf\\xe9.txt"`), free text has such characters escaped; `--json`
 * carries names as they are (docs/design-notes.md, "Names that are not UTF-8").
 */
export { nameForHumans as shownName, textForHumans as shownText };

/**
 * The --json form of a result that lists paths. JSON strings carry a name that is not
 * UTF-8 exactly (its odd bytes as the escapes `\udcXX` of lone surrogates, which
 * Python's `os.fsencode` turns back into the bytes); for readers whose decoder replaces
 * a lone surrogate (Go's encoding/json), each such path is also given in `path_bytes`:
 * path as listed → base64 of its bytes. The field is absent when every path is UTF-8.
 */
export function withPathBytes<T extends object>(data: T, lists: ReadonlyArray<readonly string[]>): T & { path_bytes?: Record<string, string> } {
  let raw: Record<string, string> | undefined;
  for (const list of lists) for (const p of list) if (!p.isWellFormed()) (raw ??= {})[p] = nameBytes(p).toString('base64');
  return raw ? { ...data, path_bytes: raw } : data;
}

/** Options every command sees; set from the global flags. */
export interface GlobalOptions {
  json: boolean;
  color: boolean;
  progress: boolean;
  debug: boolean;
  quiet: boolean;
  waitMs: number;
  worktree?: string;
}

/** What a command hands back to the edge: data for --json, lines for humans. */
export interface CommandOutput {
  data: unknown;
  human: string[];
  /** Non-zero when the command ran but found trouble (e.g. verify found damage). */
  exitCode?: number;
  error?: JvsError;
}

const paint = (on: boolean, code: string) => (s: string) => (on ? `\u001b[${code}m${s}\u001b[0m` : s);

export function styles(opts: GlobalOptions) {
  return { bold: paint(opts.color, '1'), dim: paint(opts.color, '2'), red: paint(opts.color, '31'), green: paint(opts.color, '32'), yellow: paint(opts.color, '33') };
}

export function printResult(out: CommandOutput, opts: GlobalOptions): number {
  if (opts.json) {
    const doc = out.error ? { ...(out.data as object), error: out.error.toJSON() } : out.data;
    process.stdout.write(JSON.stringify(doc, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
  } else if (!opts.quiet || out.error) {
    if (out.human.length) process.stdout.write(out.human.join('\n') + '\n');
    if (out.error) printHumanError(out.error, opts);
  }
  return out.exitCode ?? (out.error ? EXIT_CODES[out.error.code] : 0);
}

function printHumanError(err: JvsError, opts: GlobalOptions): void {
  const s = styles(opts);
  process.stderr.write(`${s.red('error')} [${err.code}]: ${textForHumans(err.message)}\n`);
  if (err.hint) process.stderr.write(`${s.dim('hint')}: ${textForHumans(err.hint)}\n`);
}

/** Print any thrown value as a JvsError; a raw stack only with --debug. */
export function printError(e: unknown, opts: GlobalOptions): number {
  const errno = (e as NodeJS.ErrnoException)?.code;
  const err =
    e instanceof JvsError
      ? e
      : errno && NO_SPACE_CODES.includes(errno)
        ? fromSystemError(e, 'the command could not finish') // a full disk is never "a bug"
        : new JvsError('E_INTERNAL', `unexpected failure: ${(e as Error)?.message ?? String(e)}`, {
          hint: 're-run with --debug and report the output at the JVS issue tracker',
          cause: e,
        });
  if (opts.json) {
    process.stdout.write(JSON.stringify({ error: err.toJSON() }) + '\n');
  } else {
    printHumanError(err, opts);
  }
  if (opts.debug) {
    process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
    let c = (e as Error)?.cause;
    while (c) {
      process.stderr.write(`caused by: ${(c as Error)?.stack ?? String(c)}\n`);
      c = (c as Error)?.cause;
    }
  }
  return EXIT_CODES[err.code];
}

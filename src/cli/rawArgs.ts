import fs from 'node:fs';
import { nameFromBytes } from '../format/nameBytes.js';

/**
 * The command line with its names as bytes. Node.js decodes argv as UTF-8 and turns a
 * byte that is not valid UTF-8 into U+FFFD, so `jvs snapshot --paths $'caf\xe9.txt'`
 * would name a file that does not exist. An argument holding U+FFFD is taken again
 * from /proc/self/cmdline (the exact bytes the process was started with) and carried
 * as nameBytes.ts carries names (lone surrogates for the bytes), so fsPath() gives the
 * kernel the same bytes back. The user's arguments are the last ones of the command
 * line (Node's own options come before the script); an argument is replaced only when
 * its bytes decode to exactly what Node handed over, so a misaligned list changes nothing.
 */
export function argvWithBytes(argv: readonly string[]): string[] {
  if (!argv.some((a) => a.includes('\ufffd'))) return [...argv];
  let raw: Buffer[];
  try {
    const text = fs.readFileSync('/proc/self/cmdline');
    raw = [];
    for (let start = 0; start < text.length; ) {
      const end = text.indexOf(0, start);
      raw.push(text.subarray(start, end === -1 ? text.length : end));
      start = end === -1 ? text.length : end + 1;
    }
  } catch {
    return [...argv]; // no procfs: the names stay as Node decoded them
  }
  const offset = raw.length - argv.length;
  return argv.map((a, i) => {
    const bytes = raw[offset + i];
    if (!a.includes('\ufffd') || !bytes || bytes.toString('utf8') !== a) return a;
    return nameFromBytes(bytes);
  });
}

import { isUtf8 } from 'node:buffer';

/*
 * File names are byte strings to the kernel (anything but "/" and NUL) and to the
 * format: the payload root hash, the manifests and the reference implementation (Go
 * strings are bytes) all work on a name's bytes. JVS carries a name as a JavaScript
 * string under one rule, the "surrogateescape" of Python's PEP 383:
 *   - bytes that form valid UTF-8 decode as usual;
 *   - every other byte b (always >= 0x80) becomes the lone low surrogate U+DC00 + b.
 * Valid UTF-8 never decodes to a lone surrogate, so the mapping is one-to-one and
 * nameBytes(nameFromBytes(b)) is b. Names that are valid UTF-8, the usual case, are
 * the plain strings they always were. native/jvs_names.c applies the same rule at the
 * addon's boundary.
 *
 * Node.js itself would turn such bytes into U+FFFD (another name, or none): a path that
 * may hold one goes to `fs` through fsPath(), which hands over its exact bytes.
 */

/** Whether `s` has no lone surrogate, i.e. is a name whose bytes are plain UTF-8 (the usual case). */
export function isPlainName(s: string): boolean {
  return s.isWellFormed();
}

/** The bytes a name stands for (see the rule above). */
export function nameBytes(s: string): Buffer {
  if (s.isWellFormed()) return Buffer.from(s, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xdc80 && c <= 0xdcff) {
      out.push(c - 0xdc00);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // a lone surrogate no name decodes to: as Node.js writes it
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return Buffer.from(out);
}

/** Length of the valid UTF-8 sequence starting at b[i] (end excluded), 0 when none does. */
function seqLength(b: Uint8Array, i: number, end: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < end && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const lo = c === 0xe0 ? 0xa0 : 0x80; // no overlong forms
    const hi = c === 0xed ? 0x9f : 0xbf; // no surrogates
    return i + 2 < end && b[i + 1]! >= lo && b[i + 1]! <= hi && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf; // nothing past U+10FFFF
    return i + 3 < end && b[i + 1]! >= lo && b[i + 1]! <= hi && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** The name for bytes b[start, end) (see the rule above). */
export function nameFromBytes(b: Buffer, start = 0, end = b.length): string {
  const sub = start === 0 && end === b.length ? b : b.subarray(start, end);
  if (isUtf8(sub)) return sub.toString('utf8');
  let s = '';
  let run = start; // start of the current run of valid sequences
  for (let i = start; i < end; ) {
    const n = seqLength(b, i, end);
    if (n) {
      i += n;
      continue;
    }
    s += b.toString('utf8', run, i) + String.fromCharCode(0xdc00 + b[i]!);
    run = ++i;
  }
  return s + b.toString('utf8', run, end);
}

/**
 * A string decoded from bytes by Node.js's UTF-8 decoder (which leaves U+FFFD where a
 * byte was not valid) read again under the rule above, when it may have lost a byte.
 */
export function nameFromUtf8(b: Buffer, start: number, end: number): string {
  const s = b.toString('utf8', start, end);
  return s.includes('\ufffd') ? nameFromBytes(b, start, end) : s;
}

/** A path as `fs` must be given it: the string itself when plain, else its exact bytes. */
export function fsPath(p: string): string | Buffer {
  return p.isWellFormed() ? p : nameBytes(p);
}

/** Characters a terminal must not receive raw in a name: C0 and C1 controls and DEL. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * A name for terminals and messages. Names that are valid UTF-8 without control
 * characters print as they are; any other is quoted the way Git quotes paths:
 * `"caf\xe9.txt"`, with `\xNN` for a byte that is not valid UTF-8 (and for ASCII
 * controls), `\n` `\t` `\r`, `\u0085` for C1 controls (their UTF-8 is two bytes,
 * so `\x85` stays the raw byte), and `\\` `\"`. A name that itself starts with `"` is
 * quoted too, so a printed name never reads as another one.
 */
export function nameForHumans(s: string): string {
  if (s.isWellFormed() && !CONTROL.test(s) && !s.startsWith('"')) return s;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += s[i]! + s[i + 1]!;
        i++;
        continue;
      }
    }
    if (c >= 0xdc80 && c <= 0xdcff) out += `\\x${(c - 0xdc00).toString(16).padStart(2, '0')}`;
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x22) out += '\\"';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x0d) out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if ((c >= 0x80 && c <= 0x9f) || (c >= 0xd800 && c <= 0xdfff)) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += s[i]!;
  }
  return out + '"';
}

/**
 * Free text that may carry names (messages, warnings) for a terminal: control
 * characters and bytes that are not UTF-8 written as `\xNN` (C1 controls as `\uNNNN`),
 * without quoting; everything else as is.
 */
export function textForHumans(s: string): string {
  if (s.isWellFormed() && !CONTROL.test(s)) return s;
  const q = nameForHumans(s);
  // The quoted form minus its quotes, with the escapes of `\` and `"` undone: only the unsafe characters stay escaped.
  return q.slice(1, -1).replace(/\\(["\\])/g, '$1');
}

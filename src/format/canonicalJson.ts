/**
 * Canonical JSON, byte-exact with the reference implementation (Go encoding/json
 * output re-serialised with sorted keys):
 *  - object keys sorted by Unicode code point (Go sorts UTF-8 bytes, which is the same order);
 *  - no whitespace; `undefined` members are omitted, never written as null;
 *  - strings escaped as Go does: `"` `\\` `\b` `\f` `\n` `\r` `\t` short forms, other
 *    C0 controls as \u00xx (lower-case hex), `<` `>` `&` and U+2028/U+2029 as \u escapes,
 *    lone surrogates as \ufffd — except U+DC80..U+DCFF, a byte of a name that is not
 *    UTF-8 (format/nameBytes.ts), written as its own escape `\udcXX`. Go writes such a
 *    byte as \ufffd and cannot read it back (the name and the checksum over it are lost:
 *    the reference re-serialises the U+FFFD it reads as three raw bytes); the escape
 *    keeps the exact bytes (JSON.parse gives the surrogate back), so a descriptor whose
 *    `partial_paths` holds such a name keeps its name and checksum (docs/integrity.md §11);
 *  - numbers as JavaScript prints them, which matches Go for the integers and the
 *    short decimals the format stores.
 */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue | undefined };

const HEX = '0123456789abcdef';

export function escapeJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += s[i]! + s[i + 1]!;
        i++;
      } else {
        out += '\\ufffd';
      }
      continue;
    }
    if (c >= 0xdc80 && c <= 0xdcff) {
      out += '\\udc' + HEX[(c >> 4) & 15]! + HEX[c & 15]!; // a name's byte: lossless
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) {
      out += '\\ufffd';
      continue;
    }
    switch (c) {
      case 0x22: out += '\\"'; continue;
      case 0x5c: out += '\\\\'; continue;
      case 0x08: out += '\\b'; continue;
      case 0x0c: out += '\\f'; continue;
      case 0x0a: out += '\\n'; continue;
      case 0x0d: out += '\\r'; continue;
      case 0x09: out += '\\t'; continue;
      case 0x3c: out += '\\u003c'; continue;
      case 0x3e: out += '\\u003e'; continue;
      case 0x26: out += '\\u0026'; continue;
      case 0x2028: out += '\\u2028'; continue;
      case 0x2029: out += '\\u2029'; continue;
    }
    if (c < 0x20) {
      out += '\\u00' + HEX[c >> 4]! + HEX[c & 15]!;
      continue;
    }
    out += s[i]!;
  }
  return out + '"';
}

/** Compare strings by Unicode code point (JS `<` compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const dx = x.value.codePointAt(0)!;
    const dy = y.value.codePointAt(0)!;
    if (dx !== dy) return dx - dy;
  }
}

export function canonicalJson(value: JsonValue | undefined): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'string':
      return escapeJsonString(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON cannot hold NaN or Infinity');
      return JSON.stringify(value);
  }
  if (Array.isArray(value)) return '[' + value.map((v) => canonicalJson(v)).join(',') + ']';
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort(compareCodePoints);
  return '{' + keys.map((k) => escapeJsonString(k) + ':' + canonicalJson(value[k])).join(',') + '}';
}

/**
 * RFC 3339 in UTC with fractional seconds trimmed of trailing zeros and dropped when
 * zero, as Go's time.Time marshals (`2026-02-28T14:03:12.5Z`).
 */
export function formatTimestamp(d: Date): string {
  const iso = d.toISOString(); // always UTC, millisecond precision
  const [main, frac] = iso.slice(0, -1).split('.') as [string, string];
  const trimmed = frac.replace(/0+$/, '');
  return trimmed ? `${main}.${trimmed}Z` : `${main}Z`;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** True when s is an RFC 3339 timestamp as the format stores them. */
export function isTimestamp(s: unknown): s is string {
  return typeof s === 'string' && RFC3339.test(s) && !Number.isNaN(Date.parse(s));
}

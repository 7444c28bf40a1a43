/**
 * How writes to a control file become requests. One request is one line, or everything
 * written up to close: a write that ends with a newline completes the request written
 * so far (unless it is a JSON object whose braces are still open), and whatever is left
 * runs when the file is closed (flush). So `echo msg > ctl/snapshot` is one request that
 * fails its write, a message arriving in several write() calls is still one request,
 * and a pretty-printed JSON object may span lines.
 *
 * Pure (no file system, no kernel): tested directly.
 */

/** Largest request held for one control-file handle (a note may be up to 64 KiB). */
export const MAX_CTL_REQUEST = 256 * 1024;

export class CtlMessage {
  private parts: Buffer[] = [];
  private length = 0;

  get size(): number {
    return this.length;
  }

  /** Append one write; false when the message grew past MAX_CTL_REQUEST. */
  add(data: Buffer): boolean {
    this.parts.push(Buffer.from(data));
    this.length += data.length;
    return this.length <= MAX_CTL_REQUEST;
  }

  /** The text of a request that is complete now (and forget it), or undefined. */
  takeComplete(): string | undefined {
    if (!this.length) return undefined;
    const text = Buffer.concat(this.parts).toString('utf8');
    if (!text.endsWith('\n') || openJson(text)) return undefined;
    this.clear();
    return text;
  }

  /** Whatever is pending (at close), and forget it. */
  takeRest(): string | undefined {
    if (!this.length) return undefined;
    const text = Buffer.concat(this.parts).toString('utf8');
    this.clear();
    return text;
  }

  clear(): void {
    this.parts = [];
    this.length = 0;
  }
}

/** True for text starting a JSON object whose braces (outside strings) are not all closed. */
export function openJson(text: string): boolean {
  const t = text.trimStart();
  if (!t.startsWith('{')) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return depth > 0 || inString;
}

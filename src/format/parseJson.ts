/**
 * Parse control-plane JSON that must be an object. `bad(why)` builds the caller's own
 * error (its class and hint name the file and the repair), so every file kind reports
 * damage its own way while the parsing is written once.
 */
export function parseJsonObject(text: string, bad: (why: string) => Error): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw bad(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('not a JSON object');
  return raw as Record<string, unknown>;
}

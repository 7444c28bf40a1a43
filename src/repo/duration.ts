import { JvsError } from '../errors.js';

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * Durations as users write them for retention and pin expiry: a whole number and a
 * unit, `90s`, `45m`, `12h`, `30d`, `2w`; several may be joined (`1d12h`).
 */
export function parseDuration(text: string, what = 'duration'): number {
  const s = String(text).trim();
  const re = /(\d+)([smhdw])/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (s === '' || matched !== s.length) {
    throw new JvsError('E_USAGE', `${what} ${JSON.stringify(text)} is not a duration`, {
      hint: 'write a number and a unit (s, m, h, d, w), e.g. `30d` or `12h`',
    });
  }
  return total;
}

export function isDuration(text: unknown): boolean {
  if (typeof text !== 'string') return false;
  try {
    parseDuration(text);
    return true;
  } catch {
    return false;
  }
}

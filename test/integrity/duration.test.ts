import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/repo/duration.js';
import { parseExpiry } from '../../src/gc/pins.js';

describe('durations for retention and pin expiry', () => {
  it('reads a number and a unit, chained units add up', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('45m')).toBe(45 * 60_000);
    expect(parseDuration('12h')).toBe(12 * 3_600_000);
    expect(parseDuration('30d')).toBe(30 * 86_400_000);
    expect(parseDuration('2w')).toBe(14 * 86_400_000);
    expect(parseDuration('1d12h')).toBe(36 * 3_600_000);
  });

  it('refuses anything else with E_USAGE', () => {
    for (const bad of ['', '30', 'd', '1.5d', '-1d', '3 days', '1d x', '1y']) {
      expect(() => parseDuration(bad), bad).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    }
  });

  it('--expires takes a duration from now or an RFC 3339 time', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseExpiry('1d', now)).toBe('2026-01-02T00:00:00Z');
    expect(parseExpiry('2027-05-06T07:08:09.5Z', now)).toBe('2027-05-06T07:08:09.5Z');
    expect(() => parseExpiry('2027-13-45', now)).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
  });
});

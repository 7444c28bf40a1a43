import { describe, expect, it } from 'vitest';
import { isCleanName, isIntentId, isPathComponent, isPlanId } from '../../src/format/controlNames.js';
import { validateName } from '../../src/repo/names.js';

const accepts = (n: string) => {
  try {
    return validateName(n) === n;
  } catch {
    return false;
  }
};

const SAMPLES = ['main', 'feature-x', 'v1.0', 'a_b', '..a', '.hidden', 'x'.repeat(255), 'x'.repeat(256), '', '.', '..',
  '../victim', '../../victim', 'a/b', 'a\\b', 'a\0b', 'tab\there', 'm\u0430in', '\uff4d\uff41\uff49\uff4e', 'caf\u00e9', 'caf\u0065\u0301', ' ', 'a b', '/abs'];

describe('control-plane names (format/controlNames.ts)', () => {
  it('isCleanName accepts exactly the names validateName accepts unchanged', () => {
    for (const n of SAMPLES) expect(isCleanName(n), JSON.stringify(n)).toBe(accepts(n));
  });

  it('isCleanName refuses non-strings, climbing names and separators', () => {
    for (const v of [undefined, null, 3, ['main'], { name: 'main' }, '../../victim', 'a/b', '..']) expect(isCleanName(v)).toBe(false);
  });

  it('isPathComponent: one component that neither climbs nor descends', () => {
    for (const ok of ['main', '1796221347416-801e7b07', 'gc-x', 'a b']) expect(isPathComponent(ok)).toBe(true);
    for (const bad of ['', '.', '..', 'a/b', '../x', '/abs', 'a\0b']) expect(isPathComponent(bad)).toBe(false);
  });

  it('plan ids are lower-case UUIDs; intent ids are clean names', () => {
    expect(isPlanId('0b6c1c3e-4f0e-4d5a-9b7e-2f1a3c4d5e6f')).toBe(true);
    expect(isPlanId('../0b6c1c3e-4f0e-4d5a-9b7e-2f1a3c4d5e6f')).toBe(false);
    expect(isIntentId('restore-1796221347416-deadbeef')).toBe(true);
    expect(isIntentId('../../victim3')).toBe(false);
  });
});

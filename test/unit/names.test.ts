import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JvsError } from '../../src/errors.js';
import { isInside, resolveInside, validateName } from '../../src/repo/names.js';
import { isSnapshotId, newSnapshotId, uniquePrefixes } from '../../src/format/snapshotId.js';
import { tmpDir } from '../helpers/tmp.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as JvsError).code;
  }
  return 'no error';
};

describe('name safety', () => {
  it('accepts [a-zA-Z0-9._-]+ and NFC-normalises first', () => {
    expect(validateName('feature-x_1.2')).toBe('feature-x_1.2');
  });

  it.each([
    ['', 'empty'], ['.', 'dot'], ['..', 'dotdot'], ['a/b', 'slash'], ['a\\b', 'backslash'], ['a\0b', 'NUL'],
    ['a\nb', 'newline'], ['tab\t', 'tab'], ['\u0430dmin', 'Cyrillic look-alike'], ['a\uff0fb', 'full-width slash'],
    ['caf\u0065\u0301', 'decomposed accent (NFC é is still outside the set)'], ['x'.repeat(256), 'too long'],
  ])('rejects %j (%s) with E_NAME_INVALID and a hint', (name) => {
    let err: JvsError | undefined;
    try {
      validateName(name, 'tag');
    } catch (e) {
      err = e as JvsError;
    }
    expect(err?.code).toBe('E_NAME_INVALID');
    expect(err?.hint).toBeTruthy();
  });

  it('path containment is boundary safe: /mnt/jfs2 is not inside /mnt/jfs', () => {
    expect(isInside('/mnt/jfs', '/mnt/jfs/a')).toBe(true);
    expect(isInside('/mnt/jfs', '/mnt/jfs')).toBe(true);
    expect(isInside('/mnt/jfs', '/mnt/jfs2')).toBe(false);
    expect(isInside('/mnt/jfs', '/mnt/jfs/../x')).toBe(false);
    expect(isInside('/mnt/jfs', '/mnt/jfs/..foo')).toBe(true);
  });

  it('resolveInside refuses `..` escapes and escapes through a symlink', () => {
    const root = tmpDir();
    fs.mkdirSync(path.join(root, 'in'));
    fs.symlinkSync('/etc', path.join(root, 'out'));
    expect(resolveInside(root, 'in/x')).toBe(path.join(root, 'in/x'));
    expect(code(() => resolveInside(root, '../x'))).toBe('E_PATH_ESCAPE');
    expect(code(() => resolveInside(root, 'out/passwd'))).toBe('E_PATH_ESCAPE');
    expect(code(() => resolveInside(root, 'a\0b'))).toBe('E_NAME_INVALID');
  });
});

describe('snapshot ids', () => {
  it('are 13-digit milliseconds, a dash and 8 random hex digits', () => {
    const id = newSnapshotId(1708300800000);
    expect(id).toMatch(/^1708300800000-[0-9a-f]{8}$/);
    expect(isSnapshotId(id)).toBe(true);
    expect(newSnapshotId(5)).toMatch(/^0000000000005-/);
  });

  it('displayed prefixes stay unique even when ids share their first 8 characters', () => {
    const ids = ['1708300800000-aaaaaaaa', '1708300800001-bbbbbbbb', '1708300900000-cccccccc'];
    const p = uniquePrefixes(ids);
    const shown = ids.map((i) => p.get(i)!);
    expect(new Set(shown).size).toBe(3);
    for (const s of shown) expect(ids.filter((i) => i.startsWith(s))).toHaveLength(1);
    expect(p.get('1708300900000-cccccccc')!.length).toBeGreaterThanOrEqual(8);
  });
});

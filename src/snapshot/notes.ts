import { JvsError } from '../errors.js';
import { validateName } from '../repo/names.js';

export const MAX_NOTE_BYTES = 64 * 1024;

/** Notes are free text, but bounded and without NUL so every tool can show them. */
export function validateNote(note: string | undefined): string | undefined {
  if (note === undefined || note === '') return undefined;
  const n = note.normalize('NFC');
  if (n.includes('\0')) {
    throw new JvsError('E_NOTE_INVALID', 'the note contains a NUL byte', { hint: 'remove control characters from the note' });
  }
  const bytes = Buffer.byteLength(n);
  if (bytes > MAX_NOTE_BYTES) {
    throw new JvsError('E_NOTE_INVALID', `the note is ${bytes} bytes; notes are limited to ${MAX_NOTE_BYTES} bytes`, {
      hint: 'keep long text in a file inside the worktree and reference it from a short note',
    });
  }
  return n;
}

export function validateTags(tags: readonly string[]): string[] {
  return [...new Set(tags.map((t) => validateName(t, 'tag')))];
}

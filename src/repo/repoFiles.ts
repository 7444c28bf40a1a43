import fs from 'node:fs';
import { JvsError } from '../errors.js';
import { FORMAT_VERSION, type Layout } from './layout.js';

/** Read and check `.jvs/format_version`; anything above 1 is refused. */
export function checkFormatVersion(layout: Layout): void {
  let text: string;
  try {
    text = fs.readFileSync(layout.formatVersion, 'utf8');
  } catch {
    throw new JvsError('E_FORMAT_UNSUPPORTED', `${layout.formatVersion} is missing`, {
      hint: 'this folder is not a complete JVS repository; run `jvs doctor` or re-create it with `jvs init`',
    });
  }
  const v = Number(text.trim());
  if (!Number.isInteger(v) || v < 1) {
    throw new JvsError('E_FORMAT_UNSUPPORTED', `format_version ${JSON.stringify(text.trim())} is not a number`, {
      hint: `write "${FORMAT_VERSION}" into ${layout.formatVersion} if the repository was made by JVS`,
    });
  }
  if (v > FORMAT_VERSION) {
    throw new JvsError('E_FORMAT_UNSUPPORTED', `repository format_version ${v} is newer than this jvs supports (${FORMAT_VERSION})`, {
      hint: 'upgrade jvs (`npm install -g jvs@latest`) to open this repository',
    });
  }
}

export function readRepoId(layout: Layout): string {
  try {
    return fs.readFileSync(layout.repoId, 'utf8').trim();
  } catch {
    return '';
  }
}

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { JvsError } from '../errors.js';

/**
 * `.jvsignore` templates shipped in the package's `templates/` folder, one
 * `<name>.jvsignore` each. The folder is the single source: listing it is how
 * `jvs init --template` knows which names exist, so adding a template is adding a file.
 */
export const TEMPLATES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../templates');
const SUFFIX = '.jvsignore';

export function listTemplates(dir: string = TEMPLATES_DIR): string[] {
  try {
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith(SUFFIX) && f.length > SUFFIX.length)
      .map((f) => f.slice(0, -SUFFIX.length))
      .sort();
  } catch {
    return [];
  }
}

/** The text of template `name`; an unknown name is E_USAGE listing the available ones. */
export function readTemplate(name: string, dir: string = TEMPLATES_DIR): string {
  const available = listTemplates(dir);
  if (!available.includes(name)) {
    throw new JvsError('E_USAGE', `unknown template ${JSON.stringify(name)}; available: ${available.join(', ') || '(none installed)'}`, {
      hint: `e.g. \`jvs init myproject --template ${available[0] ?? 'unity'}\``,
      details: { available },
    });
  }
  return fs.readFileSync(path.join(dir, `${name}${SUFFIX}`), 'utf8');
}

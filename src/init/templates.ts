import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { JvsError } from '../errors.js';
import { writeFileAtomic } from '../fsutil/atomic.js';
import { readIgnoreText } from '../select/selection.js';

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

/**
 * Apply template `name` (its text) to the `.jvsignore` of a worktree: written as is when
 * there is none, otherwise its rules not already present are appended under a comment
 * naming the template (the user's own rules stay first and untouched). Returns how many
 * rules were added (0: the file already had them all).
 */
export function applyTemplate(payloadRoot: string, name: string, text: string): { added: number; created: boolean } {
  const file = path.join(payloadRoot, '.jvsignore');
  // Read as the commands read it: never through a symlink (whose target would be
  // copied into the worktree) nor from a FIFO; such a file is refused.
  const current = readIgnoreText(payloadRoot, 'worktree');
  const rules = (t: string) => t.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (current === undefined) {
    writeFileAtomic(file, text);
    return { added: rules(text).length, created: true };
  }
  const have = new Set(rules(current));
  const missing = rules(text).filter((r) => !have.has(r));
  if (!missing.length) return { added: 0, created: false };
  const sep = current === '' || current.endsWith('\n') ? '' : '\n';
  writeFileAtomic(file, `${current}${sep}\n# from the ${name} template (jvs init --template ${name})\n${missing.join('\n')}\n`);
  return { added: missing.length, created: false };
}

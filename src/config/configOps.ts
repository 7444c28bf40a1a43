import fs from 'node:fs';
import { JvsError } from '../errors.js';
import { writeFileAtomic } from '../fsutil/atomic.js';
import { appendAudit } from '../repo/audit.js';
import { CONFIG_SETTINGS, getPath, loadYaml, parseRepoConfig, readRepoConfigText, type RepoConfig } from '../repo/config.js';
import { Layout } from '../repo/layout.js';
import { findRepoRoot } from '../repo/openRepo.js';
import { withRepoLock } from '../repo/lock.js';

/** What each setting means when `.jvs/config.yaml` leaves it out. */
export const CONFIG_DEFAULTS: Record<string, unknown> = {
  default_engine: 'auto',
  default_tags: [],
  output_format: 'text',
  progress_enabled: true,
  'retention.keep': 0,
  'retention.within': '',
};

export interface ConfigShow {
  file: string;
  exists: boolean;
  /** The settings as written in the file. */
  settings: RepoConfig;
  /** Every known setting with the value in force (file, else default). */
  effective: Record<string, unknown>;
}

export async function showConfig(layout: Layout): Promise<ConfigShow> {
  const text = readRepoConfigText(layout);
  const settings = parseRepoConfig(await loadYaml(), text, layout.configYaml);
  const effective: Record<string, unknown> = {};
  for (const key of Object.keys(CONFIG_SETTINGS)) {
    const v = getPath(settings as Record<string, unknown>, key);
    effective[key] = v === undefined ? CONFIG_DEFAULTS[key] : v;
  }
  return { file: layout.configYaml, exists: text !== undefined, settings, effective };
}

function knownKey(key: string): void {
  if (!(key in CONFIG_SETTINGS)) {
    throw new JvsError('E_USAGE', `unknown setting ${JSON.stringify(key)}`, {
      hint: `settings: ${Object.keys(CONFIG_SETTINGS).join(', ')} (\`jvs config show\` lists them with their values)`,
    });
  }
}

export async function getConfig(layout: Layout, key: string): Promise<{ key: string; value: unknown; is_set: boolean; default: unknown }> {
  knownKey(key);
  const shown = await showConfig(layout);
  const v = getPath(shown.settings as Record<string, unknown>, key);
  return { key, value: v === undefined ? CONFIG_DEFAULTS[key] : v, is_set: v !== undefined, default: CONFIG_DEFAULTS[key] };
}

/**
 * Set one setting. The value is read as YAML (`20` is a number, `true` a boolean,
 * `[a, b]` a list), checked against the setting, and written back into the file
 * with its comments and other settings kept. Serialised by the repository lock.
 */
export async function setConfig(layout: Layout, key: string, raw: string, lockWaitMs?: number): Promise<{ key: string; value: unknown; file: string }> {
  knownKey(key);
  const yaml = await loadYaml();
  let value: unknown;
  try {
    value = yaml.parse(raw);
  } catch {
    value = raw;
  }
  if (value === null || value === undefined) value = raw;
  // A duration or engine name typed bare stays a string.
  if (key === 'retention.within' && typeof value !== 'string') value = String(raw);
  const why = CONFIG_SETTINGS[key]!.check(value);
  if (why) {
    throw new JvsError('E_CONFIG_INVALID', `${key} ${why} (got ${JSON.stringify(raw)})`, { hint: `e.g. \`jvs config set ${key} ${CONFIG_SETTINGS[key]!.example}\`` });
  }
  return withRepoLock(layout, { waitMs: lockWaitMs, command: 'config set' }, () => {
    const text = readRepoConfigText(layout) ?? '';
    const doc = yaml.parseDocument(text);
    // Refuse to edit a file we cannot parse; a setting out of range is what `set` repairs
    // (the result is checked as a whole below, so another bad setting is still named).
    if (doc.errors.length) parseRepoConfig(yaml, text, layout.configYaml);
    if (doc.contents === null) (doc as { contents: unknown }).contents = doc.createNode({});
    doc.setIn(key.split('.'), value);
    const out = String(doc);
    parseRepoConfig(yaml, out, layout.configYaml);
    fs.mkdirSync(layout.control, { recursive: true });
    writeFileAtomic(layout.configYaml, out);
    appendAudit(layout, { event_type: 'config_set', details: { key, value: JSON.stringify(value) } });
    return { key, value, file: layout.configYaml };
  });
}

export interface OutputPreferences {
  json?: boolean;
  progress?: boolean;
}

/**
 * `output_format` and `progress_enabled` of the repository around `cwd`, for the CLI's
 * defaults (a flag on the command line wins). Read on every command, so it stays cheap:
 * YAML is parsed only when the file names one of the two keys. A config that cannot be
 * read gives no preferences here: the command itself reports it where it reads the
 * config, and `jvs config set` must still be able to repair it.
 */
export async function outputPreferences(cwd: string): Promise<OutputPreferences> {
  const root = findRepoRoot(cwd);
  if (!root) return {};
  const text = readRepoConfigText(new Layout(root));
  if (!text || !/\b(output_format|progress_enabled)\b/.test(text)) return {};
  try {
    const c = parseRepoConfig(await loadYaml(), text, 'config.yaml');
    return {
      ...(c.output_format ? { json: c.output_format === 'json' } : {}),
      ...(c.progress_enabled !== undefined ? { progress: c.progress_enabled } : {}),
    };
  } catch {
    return {};
  }
}

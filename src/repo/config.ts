import fs from 'node:fs';
import { JvsError } from '../errors.js';
import { isDuration } from './duration.js';
import type { Layout } from './layout.js';

/** `.jvs/config.yaml`: optional; every key has a default. */
export interface RepoConfig {
  default_engine?: string;
  default_tags?: string[];
  output_format?: 'text' | 'json';
  progress_enabled?: boolean;
  retention?: { keep?: number; within?: string };
}

export async function loadYaml(): Promise<typeof import('yaml')> {
  return import('yaml');
}

export function readRepoConfigText(layout: Layout): string | undefined {
  try {
    return fs.readFileSync(layout.configYaml, 'utf8');
  } catch {
    return undefined;
  }
}

/** Parse config text (YAML). Malformed YAML is a clear error naming the file. */
export function parseRepoConfig(yaml: typeof import('yaml'), text: string | undefined, file: string): RepoConfig {
  if (text === undefined || text.trim() === '') return {};
  let v: unknown;
  try {
    v = yaml.parse(text);
  } catch (e) {
    throw new JvsError('E_CONFIG_INVALID', `${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`, {
      hint: `fix or remove ${file} (\`jvs config show\` prints what is read)`,
    });
  }
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw new JvsError('E_CONFIG_INVALID', `${file} must hold a mapping of settings`, { hint: `fix or remove ${file}` });
  }
  const c = v as Record<string, unknown>;
  for (const [key, setting] of Object.entries(CONFIG_SETTINGS)) {
    const value = getPath(c, key);
    if (value === undefined) continue;
    const why = setting.check(value);
    if (why) throw new JvsError('E_CONFIG_INVALID', `${file}: ${key} ${why}`, { hint: `e.g. \`jvs config set ${key} ${setting.example}\`` });
  }
  if (c.retention !== undefined && (typeof c.retention !== 'object' || c.retention === null || Array.isArray(c.retention))) {
    throw new JvsError('E_CONFIG_INVALID', `${file}: retention must be a mapping with keep and/or within`, { hint: 'e.g. `jvs config set retention.keep 20`' });
  }
  return c as RepoConfig;
}

/** Read a dotted key (`retention.keep`) out of a parsed config. */
export function getPath(obj: Record<string, unknown>, key: string): unknown {
  let cur: unknown = obj;
  for (const part of key.split('.')) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

const ENGINES = ['auto', 'juicefs-clone', 'reflink-copy', 'copy'];
const TAG_RE = /^[a-zA-Z0-9._-]+$/;

/**
 * Every setting `.jvs/config.yaml` may hold, with its check (a reason when the value
 * is wrong). Unknown keys are kept on read (another implementation may write them)
 * but `jvs config set` refuses them.
 */
export const CONFIG_SETTINGS: Record<string, { describe: string; example: string; check(v: unknown): string | undefined }> = {
  default_engine: {
    describe: 'snapshot engine: auto, juicefs-clone, reflink-copy or copy',
    example: 'reflink-copy',
    check: (v) => (typeof v === 'string' && ENGINES.includes(v) ? undefined : `must be one of ${ENGINES.join(', ')}`),
  },
  default_tags: {
    describe: 'tags added to every snapshot',
    example: '"[nightly]"',
    check: (v) => (Array.isArray(v) && v.every((t) => typeof t === 'string' && TAG_RE.test(t) && t !== '.' && t !== '..') ? undefined : 'must be a list of tag names ([a-zA-Z0-9._-]+)'),
  },
  output_format: {
    describe: 'text or json (json behaves as if --json were given)',
    example: 'json',
    check: (v) => (v === 'text' || v === 'json' ? undefined : 'must be text or json'),
  },
  progress_enabled: {
    describe: 'draw progress bars on a terminal',
    example: 'false',
    check: (v) => (typeof v === 'boolean' ? undefined : 'must be true or false'),
  },
  'retention.keep': {
    describe: 'gc keeps at least this many newest snapshots',
    example: '20',
    check: (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? undefined : 'must be a whole number ≥ 0'),
  },
  'retention.within': {
    describe: 'gc keeps every snapshot younger than this (e.g. 30d, 12h)',
    example: '30d',
    check: (v) => (isDuration(v) ? undefined : 'must be a duration such as 30d, 12h or 2w'),
  },
};

export async function readRepoConfig(layout: Layout): Promise<RepoConfig> {
  const text = readRepoConfigText(layout);
  if (text === undefined) return {};
  return parseRepoConfig(await loadYaml(), text, layout.configYaml);
}

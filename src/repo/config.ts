import fs from 'node:fs';
import { JvsError } from '../errors.js';
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
  if (c.default_tags !== undefined && (!Array.isArray(c.default_tags) || !c.default_tags.every((t) => typeof t === 'string'))) {
    throw new JvsError('E_CONFIG_INVALID', `${file}: default_tags must be a list of tag names`, { hint: 'e.g. `jvs config set default_tags "[nightly]"`' });
  }
  if (c.default_engine !== undefined && typeof c.default_engine !== 'string') {
    throw new JvsError('E_CONFIG_INVALID', `${file}: default_engine must be a string`, { hint: 'one of auto, juicefs-clone, reflink-copy, copy' });
  }
  return c as RepoConfig;
}

export async function readRepoConfig(layout: Layout): Promise<RepoConfig> {
  const text = readRepoConfigText(layout);
  if (text === undefined) return {};
  return parseRepoConfig(await loadYaml(), text, layout.configYaml);
}

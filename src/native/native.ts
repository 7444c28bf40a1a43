import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The optional addon built from native/jvs_native.c. */
export interface NativeAddon {
  renameExchange(a: string, b: string): void;
  syncfs(p: string): void;
  lutimesNs(p: string, atimeNs: bigint, mtimeNs: bigint): void;
  /** Returns an fd holding an exclusive flock; throws code EAGAIN when another holder has it. */
  flockExclusive(p: string): number;
}

let cached: NativeAddon | null | undefined;

/** The addon, or null when it was not built (callers then use their fallback). */
export function native(): NativeAddon | null {
  if (cached !== undefined) return cached;
  if (process.env.JVS_DISABLE_NATIVE === '1') return (cached = null);
  const here = path.dirname(fileURLToPath(import.meta.url));
  const require = createRequire(import.meta.url);
  try {
    cached = require(path.resolve(here, '../../build/Release/jvs_native.node')) as NativeAddon;
  } catch {
    cached = null;
  }
  return cached;
}

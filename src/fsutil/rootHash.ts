import { payloadRootHash, type HashedEntry } from '../format/payloadHash.js';
import { native, type NativeAddon } from '../native/native.js';

/** The addon's rootHash, or undefined (not built, disabled, or an older build without it). */
function nativeRootHash(): NativeAddon['rootHash'] | undefined {
  const n = native();
  return n && typeof n.rootHash === 'function' ? n.rootHash.bind(n) : undefined;
}

/** Entries in the form the addon's rootHash takes (see NativeAddon['rootHash']). */
export interface PackedEntries {
  fields: string;
  types: Uint8Array;
  modes: Uint16Array;
  sizes: Float64Array;
}

/**
 * Packs entries into one string and three typed arrays, so the call costs one join and
 * no per-entry N-API call. Undefined for an entry type the addon does not know (the
 * JavaScript version then reports it).
 */
export function packEntries(list: readonly HashedEntry[]): PackedEntries | undefined {
  const n = list.length;
  const types = new Uint8Array(n);
  const modes = new Uint16Array(n);
  const sizes = new Float64Array(n);
  const fields: string[] = [];
  for (let i = 0; i < n; i++) {
    const e = list[i]!;
    fields.push(e.rel);
    modes[i] = e.mode & 0o777;
    switch (e.type) {
      case 'dir':
        break;
      case 'file':
        types[i] = 1;
        sizes[i] = e.size;
        // Empty when missing: the addon then throws as payloadRootHash does.
        fields.push(e.contentHash ?? '');
        break;
      case 'symlink':
        types[i] = 2;
        fields.push(e.target ?? '');
        break;
      default:
        return undefined;
    }
  }
  return { fields: fields.join('\0'), types, modes, sizes };
}

/**
 * The payload root hash (DESIGN.md §3) of hashed entries: computed by the addon
 * (native/jvs_roothash.c) when it is built, else by src/format/payloadHash.ts, which
 * stays the definition and the oracle of the tests (test/unit/rootHash.test.ts).
 * What the C side could print differently from JavaScript (an unknown type, a size that
 * is not a safe integer, a "\0" in a name) goes to the JavaScript version, so both give
 * the same answer or the same error.
 */
export function rootHashOf(entries: Iterable<HashedEntry>): string {
  const rootHash = nativeRootHash();
  if (!rootHash) return payloadRootHash(entries);
  const list: readonly HashedEntry[] = Array.isArray(entries) ? entries : [...entries];
  const p = packEntries(list);
  return (p && rootHash(p.fields, p.types, p.modes, p.sizes)) ?? payloadRootHash(list);
}

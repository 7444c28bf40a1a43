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

/**
 * The payload root hash of a manifest in the index's own encoding: its chunks' bytes
 * (src/index/manifestCodec.ts), in any order, which must be the encoding of the
 * entries the caller holds. The addon hashes the records where they lie, without the
 * entries being packed into one string and taken apart again (~3 ms of a 10,000-entry
 * restore or snapshot). Undefined when the addon is not built or leaves the records to
 * JavaScript; the caller then uses rootHashOf on the decoded entries, which gives the
 * same answer (test/unit/rootHash.test.ts plays both on the same lists).
 */
export function rootHashOfRecords(chunks: readonly Buffer[]): string | undefined {
  const n = native();
  if (!n || typeof n.rootHashRecords !== 'function') return undefined;
  return n.rootHashRecords(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)) ?? undefined;
}

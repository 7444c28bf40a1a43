import fs from 'node:fs';
import { JvsError } from '../errors.js';
import { parseDescriptor, type Descriptor } from '../format/descriptor.js';
import type { Layout } from '../repo/layout.js';
import { listSnapshotIds, loadDescriptors, type DescriptorLoad } from '../repo/snapshots.js';
import { IndexDb, snapshotOwner, type CatalogRow } from './indexDb.js';

/**
 * Every descriptor, oldest first, served from the index catalog. The descriptor folder
 * stays the truth: its listing and each file's size and mtime are checked (one readdir
 * and one stat per snapshot, no reads), new or edited files are read and cached,
 * vanished ones (gc) are dropped with their manifests. Without an index this is
 * loadDescriptors.
 */
export function loadCatalog(layout: Layout, idx?: IndexDb): DescriptorLoad {
  const own = idx ? undefined : IndexDb.open(layout);
  const db = idx ?? own;
  try {
    const rows = db?.catalogRows();
    if (!db || !rows) return loadDescriptors(layout);
    const cached = new Map(rows.map((r) => [r.id, r]));
    const ids = listSnapshotIds(layout);
    const put: CatalogRow[] = [];
    const descriptors: Descriptor[] = [];
    const broken: DescriptorLoad['broken'] = [];
    for (const id of ids) {
      let st: fs.BigIntStats;
      try {
        st = fs.statSync(layout.descriptor(id), { bigint: true });
      } catch {
        continue; // removed while we looked
      }
      const size = Number(st.size);
      const mtimeNs = st.mtimeNs.toString();
      const row = cached.get(id);
      cached.delete(id);
      let text = row && row.size === size && row.mtimeNs === mtimeNs ? row.descriptor : undefined;
      const fresh = text === undefined;
      if (fresh) {
        try {
          text = fs.readFileSync(layout.descriptor(id), 'utf8');
        } catch {
          continue;
        }
      }
      try {
        descriptors.push(parseDescriptor(text!, id));
        if (fresh) put.push({ id, size, mtimeNs, descriptor: text! });
      } catch (e) {
        if (e instanceof JvsError) broken.push({ id, error: e });
        else throw e;
      }
    }
    const gone = [...cached.keys()];
    db.updateCatalog(put, gone);
    for (const id of gone) db.deleteList(snapshotOwner(id));
    return { descriptors, broken };
  } finally {
    own?.close();
  }
}

/** Cache one freshly published descriptor. */
export function catalogAdd(idx: IndexDb, layout: Layout, id: string): void {
  try {
    const st = fs.statSync(layout.descriptor(id), { bigint: true });
    idx.updateCatalog([{ id, size: Number(st.size), mtimeNs: st.mtimeNs.toString(), descriptor: fs.readFileSync(layout.descriptor(id), 'utf8') }], []);
  } catch {
    /* a cache: the next loadCatalog reads it */
  }
}

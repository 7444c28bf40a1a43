import fs from 'node:fs';
import { JvsError } from '../errors.js';
import { parseDescriptor, type Descriptor } from '../format/descriptor.js';
import { isSnapshotId } from '../format/snapshotId.js';
import { jsonFileNames } from '../fsutil/atomic.js';
import type { Layout } from './layout.js';

/** Ids of published snapshots (those with a descriptor), oldest first. */
export function listSnapshotIds(layout: Layout): string[] {
  return jsonFileNames(layout.descriptors)
    .map((n) => n.slice(0, -5))
    .filter(isSnapshotId);
}

export function readDescriptor(layout: Layout, id: string): Descriptor {
  let text: string;
  try {
    text = fs.readFileSync(layout.descriptor(id), 'utf8');
  } catch {
    throw new JvsError('E_NOT_FOUND', `snapshot ${id} does not exist`, { hint: 'run `jvs history --all` to list snapshots' });
  }
  return parseDescriptor(text, id);
}

export interface DescriptorLoad {
  descriptors: Descriptor[];
  /** Descriptors that could not be parsed; reported, never hidden. */
  broken: Array<{ id: string; error: JvsError }>;
}

/** Every descriptor, oldest first. */
export function loadDescriptors(layout: Layout): DescriptorLoad {
  const descriptors: Descriptor[] = [];
  const broken: DescriptorLoad['broken'] = [];
  for (const id of listSnapshotIds(layout)) {
    try {
      descriptors.push(readDescriptor(layout, id));
    } catch (e) {
      if (e instanceof JvsError) broken.push({ id, error: e });
      else throw e;
    }
  }
  return { descriptors, broken };
}

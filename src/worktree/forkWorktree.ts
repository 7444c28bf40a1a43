import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { JvsError, fromSystemError } from '../errors.js';
import { formatTimestamp } from '../format/canonicalJson.js';
import { chooseEngine } from '../engines/detect.js';
import { materializeTree } from '../engines/materialize.js';
import { fsClockNs } from '../index/changeDetect.js';
import { IndexDb } from '../index/indexDb.js';
import { stateAfterApply } from '../index/incremental.js';
import { checkedSnapshotManifest, getSnapshotManifest, putSnapshotManifest, putWorktreeState, type IndexedEntry } from '../index/manifests.js';
import { applyTree } from '../engines/applyTree.js';
import { applyMetadata } from '../engines/metadata.js';
import { keepXattrs } from '../engines/xattrs.js';
import { noteWorktreeXattrs, snapshotMayHoldXattrs } from '../index/xattrFlags.js';
import { rootHashOf } from '../fsutil/rootHash.js';
import type { Descriptor } from '../format/descriptor.js';
import { fsyncDir } from '../fsutil/atomic.js';
import { appendAudit } from '../repo/audit.js';
import { readRepoConfig } from '../repo/config.js';
import { faultPoint } from '../repo/faults.js';
import { completeIntent, writeIntent } from '../repo/intents.js';
import { MAIN_WORKTREE, READY_FILE, type Layout } from '../repo/layout.js';
import { withPublishLock, withRepoLock, withWorktreeLock } from '../repo/lock.js';
import { validateName } from '../repo/names.js';
import { resolveRef } from '../repo/refs.js';
import { readWorktreeConfig, writeWorktreeConfig, type WorktreeConfig } from '../repo/worktreeConfig.js';
import type { Reporter } from '../progress.js';
import { assertRestorable } from '../verify/restorable.js';
import { expandCompressed } from '../verify/compressedPayload.js';
import { compressionOf } from '../format/compression.js';
import { readDescriptor } from '../repo/snapshots.js';

export interface ForkOptions {
  name: string;
  /** Snapshot ref; without it the source worktree's head. With `empty`, no snapshot. */
  ref?: string;
  fromWorktree: string;
  empty?: boolean;
  lockWaitMs?: number;
  reporter?: Reporter;
}

export interface ForkResult {
  worktree: string;
  path: string;
  snapshot_id?: string;
  files: number;
  /** What could not be copied exactly (extended attributes); absent when nothing. */
  degraded?: string[];
}

export function assertNewWorktreeName(layout: Layout, raw: string): string {
  const name = validateName(raw, 'worktree');
  if (name === MAIN_WORKTREE || fs.existsSync(layout.worktreeConfig(name)) || fs.existsSync(layout.payload(name))) {
    throw new JvsError('E_ALREADY_EXISTS', `worktree '${name}' already exists`, { hint: 'choose another name (`jvs worktree list` shows the names in use)' });
  }
  return name;
}

/**
 * Create a worktree from a snapshot (fork) or empty. The payload is built under
 * `.jvs/tmp/` and renamed into `worktrees/<name>` before its config is written, so a
 * crash leaves either no worktree or a complete one (doctor removes a stray stage).
 */
export async function forkWorktree(layout: Layout, opts: ForkOptions): Promise<ForkResult> {
  const config = await readRepoConfig(layout);
  // The new worktree's lock for the copy (a second fork to the same name waits, then
  // finds it taken); the repository lock while the source is resolved and the intent
  // written (a live intent keeps gc off the snapshot), and again around the publish.
  const lockOpts = { waitMs: opts.lockWaitMs, command: 'worktree fork', reporter: opts.reporter };
  return withWorktreeLock(layout, [validateName(opts.name, 'worktree')], lockOpts, () => {
    const { name, snapshotId, descriptor, engine, opId, stage, dest } = withRepoLock(layout, lockOpts, () => {
      const name = assertNewWorktreeName(layout, opts.name);
      let snapshotId: string | undefined;
      let descriptor: Descriptor | undefined;
      if (!opts.empty) {
        const src: WorktreeConfig = readWorktreeConfig(layout, opts.fromWorktree);
        const ref = opts.ref ?? src.head_snapshot_id;
        if (!ref) {
          throw new JvsError('E_NOT_FOUND', `worktree '${src.name}' has no snapshot to fork from`, {
            hint: 'take one first with `jvs snapshot "note"`, or create an empty worktree with `jvs worktree create <name>`',
          });
        }
        descriptor = resolveRef(layout, ref, src).descriptor;
        assertRestorable(layout, descriptor);
        snapshotId = descriptor.snapshot_id;
      }
      const { engine } = chooseEngine(layout.tmp, config.default_engine);
      const opId = `fork-${Date.now()}-${randomBytes(4).toString('hex')}`;
      const stage = layout.tmpPath(opId);
      // A repository made by the reference has no .jvs/tmp (runtime state of ours).
      fs.mkdirSync(layout.tmp, { recursive: true });
      const dest = layout.worktreeRoot(name);
      writeIntent(layout, { id: opId, operation: 'fork', worktree_name: name, ...(snapshotId ? { snapshot_id: snapshotId } : {}), details: { stage } });
      return { name, snapshotId, descriptor, engine, opId, stage, dest };
    });
    faultPoint('fork.1-intent');
    try {
      let files = 0;
      let degraded: string[] = [];
      const compressed = snapshotId ? compressionOf(readDescriptor(layout, snapshotId)) : undefined;
      if (snapshotId && compressed) {
        // Decompressed and verified into .jvs/tmp, then moved into place as the stage.
        files = expandCompressed(layout, readDescriptor(layout, snapshotId), (tree) => {
          fs.renameSync(tree, stage);
          return 0;
        }, true).files;
      } else if (snapshotId) {
        const idx = IndexDb.open(layout);
        try {
          let manifest: IndexedEntry[] | undefined;
          const from = layout.snapshotDir(snapshotId);
          if (idx && !engine.cloneTree) {
            // As restore does: the manifest checked against the descriptor, every file
            // opened below the snapshot root without following symlinks and checked
            // against the manifest while copied (applyTree into the empty stage).
            manifest = checkedSnapshotManifest(idx, layout, descriptor!);
            fs.mkdirSync(stage, { mode: 0o700 });
            applyTree(from, stage, engine, {
              skipNames: new Set([READY_FILE]),
              sourceEntries: manifest,
              onProgress: opts.reporter ? (d, t) => opts.reporter!.progress('fork', d, t) : undefined,
            });
            applyMetadata(stage, fs.lstatSync(from, { bigint: true }), false);
            // Every entry is new here: the snapshot's extended attributes, root included.
            degraded = keepXattrs(from, stage, ['', ...manifest.map((e) => e.rel)]).degraded;
            files = manifest.filter((e) => e.type === 'file').length;
          } else {
            // Hashes come from the snapshot's manifest; only without one are files hashed while copied.
            manifest = getSnapshotManifest(idx, snapshotId);
            const m = materializeTree(from, stage, engine, {
              skipNames: new Set([READY_FILE]),
              hash: !manifest,
              onProgress: opts.reporter ? (d, t) => opts.reporter!.progress('fork', d, t) : undefined,
            });
            files = m.entries.filter((e) => e.type === 'file').length;
            degraded = m.degraded;
            if (!manifest && rootHashOf(m.entries) !== descriptor!.payload_root_hash) {
              throw new JvsError('E_PAYLOAD_HASH_MISMATCH', `snapshot ${snapshotId}: its payload does not match its descriptor; nothing was created`, {
                hint: '`jvs verify --all` lists the damaged snapshots; fork another snapshot',
              });
            }
            if (idx && !manifest) putSnapshotManifest(idx, snapshotId, (manifest = m.entries));
          }
          if (idx && manifest) {
            // The stage is private until published, so its files can be vouched for by a
            // clock probe taken after they were written (nobody else can write them meanwhile).
            const probeNs = fsClockNs(layout.tmp);
            putWorktreeState(idx, name, { entries: stateAfterApply(stage, manifest, () => undefined), probeNs, basis: snapshotId });
            noteWorktreeXattrs(idx, name, snapshotId!, snapshotMayHoldXattrs(idx, snapshotId));
          }
        } finally {
          idx?.close();
        }
      } else {
        fs.mkdirSync(stage, { mode: 0o755 });
        fs.chmodSync(stage, 0o755);
      }
      faultPoint('fork.2-materialize');
      withPublishLock(layout, lockOpts, () => {
        fs.mkdirSync(layout.otherWorktreePayloads, { recursive: true });
        fs.renameSync(stage, dest);
        fsyncDir(layout.otherWorktreePayloads);
        faultPoint('fork.3-publish');
        writeWorktreeConfig(layout, {
          name,
          created_at: formatTimestamp(new Date()),
          ...(snapshotId ? { base_snapshot_id: snapshotId, head_snapshot_id: snapshotId, latest_snapshot_id: snapshotId } : {}),
        });
        faultPoint('fork.4-config');
        completeIntent(layout, opId);
        appendAudit(layout, { event_type: 'worktree_create', worktree_name: name, ...(snapshotId ? { snapshot_id: snapshotId } : {}), details: { engine: engine.name, ...(degraded.length ? { degraded } : {}) } });
      });
      return { worktree: name, path: dest, ...(snapshotId ? { snapshot_id: snapshotId } : {}), files, ...(degraded.length ? { degraded } : {}) };
    } catch (e) {
      fs.rmSync(stage, { recursive: true, force: true });
      completeIntent(layout, opId);
      throw fromSystemError(e, `cannot create worktree '${name}'`);
    }
  });
}

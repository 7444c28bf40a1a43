import { anyXattrs, COMPRESSED_XATTRS, filesystemKeepsXattrs } from '../engines/xattrs.js';
import { noteSnapshotXattrs, noteWorktreeXattrs, snapshotMayHoldXattrs } from '../index/xattrFlags.js';
import fs from 'node:fs';
import path from 'node:path';
import { JvsError, fromSystemError } from '../errors.js';
import { formatTimestamp } from '../format/canonicalJson.js';
import { descriptorChecksum, serializeDescriptor, serializeReady, type Descriptor } from '../format/descriptor.js';
import { rootHashOf, rootHashOfRecords } from '../fsutil/rootHash.js';
import { newSnapshotId } from '../format/snapshotId.js';
import { fsyncDir, writeFileDurable } from '../fsutil/atomic.js';
import { startSyncTree } from '../fsutil/syncTree.js';
import { chooseEngine } from '../engines/detect.js';
import { materializeTree, type MaterializeResult, type MaterializeStats } from '../engines/materialize.js';
import { fsClockNs } from '../index/changeDetect.js';
import { IndexDb } from '../index/indexDb.js';
import { recordSnapshot, snapshotKnowledge } from '../index/incremental.js';
import { appendAudit } from '../repo/audit.js';
import { readRepoConfig } from '../repo/config.js';
import { faultPoint } from '../repo/faults.js';
import { completeIntent, writeIntent } from '../repo/intents.js';
import type { Layout } from '../repo/layout.js';
import { READY_FILE } from '../repo/layout.js';
import { withPublishLock, withWorktreeLock } from '../repo/lock.js';
import { isDetached, readWorktreeConfig, writeWorktreeConfig } from '../repo/worktreeConfig.js';
import type { Reporter } from '../progress.js';
import { validateNote, validateTags } from './notes.js';
import { tracePhase } from '../trace.js';
import { runPreSnapshotHook } from './preSnapshotHook.js';
import { loadIgnore, normalizePartialPaths, selection, takesEverything } from '../select/selection.js';
import { startWalk } from '../fsutil/walk.js';
import type { ScanReuse } from '../native/native.js';
import { compressionOf, storedName, type CompressionInfo } from '../format/compression.js';
import { readDescriptor } from '../repo/snapshots.js';
import { compressedReady, compressStage } from './compressStage.js';
import { pinByOperation } from '../gc/pins.js';

export interface SnapshotOptions {
  worktree: string;
  note?: string;
  tags?: string[];
  /** Partial snapshot: only these paths (relative to `cwd`, default the worktree root). */
  paths?: string[];
  cwd?: string;
  /** Skip the pre-snapshot hook (never set by the CLI). */
  noHook?: boolean;
  /** `--compress`: store files gzip-compressed in the reference's layout (src/format/compression.ts). */
  compression?: CompressionInfo;
  lockWaitMs?: number;
  reporter?: Reporter;
  /**
   * Keep the worktree's state as a snapshot off its line (restore's unsaved work):
   * parent = the head, the worktree's head and latest stay where they are, the
   * snapshot is pinned with this reason, and no default tags are added.
   */
  offLine?: { reason: string };
  /**
   * The mount's dirty tracking (src/fuse/dirtyWalk.ts): an earlier whole-tree scan of
   * this worktree and the folders that may have changed since it began (asked for right
   * before the walk, after the pre-snapshot hook); the others are taken from it without
   * being read. Used only when the walk is the addon's
   * whole-tree scan (nothing left out, no clone engine); `onScan` then gets this
   * snapshot's scan, the next one's `previous`.
   */
  walkReuse?: () => ScanReuse | undefined;
  onScan?: (scan: object) => void;
}

export interface SnapshotResult {
  snapshot_id: string;
  parent_id?: string;
  worktree_name: string;
  created_at: string;
  note?: string;
  tags: string[];
  partial_paths?: string[];
  engine: string;
  payload_root_hash: string;
  files: number;
  bytes: number;
  duration_ms: number;
  degraded: string[];
  /** How files reached the snapshot: hard-linked from the parent, copied, or read to compare. */
  incremental: MaterializeStats & { index: boolean };
  /**
   * Set when the worktree was detached: this snapshot started a new line from the
   * restored snapshot, and the tip of the line it left was pinned.
   */
  new_line?: { from_snapshot_id: string; left_line_tip: string; pinned: boolean };
  /** Set for an off-line snapshot: it is pinned and the worktree did not move. */
  off_line?: boolean;
}

/**
 * Publish a snapshot of a worktree. The steps are numbered as in DESIGN section 4;
 * until step 7 nothing is visible, and every failure before it removes the stage.
 */
export async function createSnapshot(layout: Layout, opts: SnapshotOptions): Promise<SnapshotResult> {
  const started = Date.now();
  tracePhase('snapshot: start');
  const config = await readRepoConfig(layout);
  const note = validateNote(opts.note);
  const tags = validateTags([...(opts.offLine ? [] : config.default_tags ?? []), ...(opts.tags ?? [])]);
  const payloadRoot = layout.worktreeRoot(opts.worktree);
  const partial = opts.paths?.length ? normalizePartialPaths(payloadRoot, opts.paths, opts.cwd ?? payloadRoot) : [];
  if (!opts.noHook) runPreSnapshotHook(layout, opts.worktree, note);
  const ignored = loadIgnore(payloadRoot);
  // A root `.READY` is the reference's copy of a snapshot marker (it copies one into
  // worktrees on restore and fork): never payload. Leaving it out costs the fast scan
  // only in worktrees that hold one.
  const exclude = hasRootReady(payloadRoot) ? (rel: string) => rel === READY_FILE : undefined;
  const include = selection({ ignored: ignored ? [ignored] : [], partial, exclude });

  // The worktree's own lock for the long part; the repository lock only around steps 7-10.
  const lockOpts = { waitMs: opts.lockWaitMs, command: 'snapshot', reporter: opts.reporter };
  return withWorktreeLock(layout, [opts.worktree], lockOpts, () => {
    const wt = readWorktreeConfig(layout, opts.worktree);
    // The parent is what the worktree shows (its head). A detached worktree (restored to
    // an older snapshot) starts a new line there; unlike the reference, which refuses,
    // because "restore the baseline, work, snapshot" is how our users work (DESIGN §3).
    const parentId = wt.head_snapshot_id ?? wt.latest_snapshot_id;
    const leftTip = !opts.offLine && isDetached(wt) ? wt.latest_snapshot_id : undefined;
    // A worktree that never snapshotted past its fork point leaves no line of its own to pin.
    const pinLeft = !!leftTip && leftTip !== wt.base_snapshot_id;
    const payload = layout.worktreeRoot(wt.name);
    if (!fs.existsSync(payload)) {
      throw new JvsError('E_NOT_FOUND', `payload folder of worktree '${wt.name}' is missing: ${payload}`, { hint: 'run `jvs doctor --strict`' });
    }
    const { engine, degraded: engineNote } = chooseEngine(layout.tmp, config.default_engine);
    const id = newSnapshotId();
    const tmpDir = layout.snapshotTmpDir(id);
    const createdAt = formatTimestamp(new Date());

    // The clock probe comes before the stat walk (racy-clean rule, src/index/changeDetect.ts).
    // With nothing to leave out, the worktree is scanned on every core from here on,
    // while the intent is written and the index opened and read (the scan only reads).
    const probeNs = safeProbe(layout.tmp);
    const walk = !engine.cloneTree && include === takesEverything ? startWalk(payload, {}, opts.walkReuse?.()) : undefined;
    if (walk?.scan) opts.onScan?.(walk.scan);

    // 1. intent (file and folder fsynced)
    writeIntent(layout, {
      id,
      operation: 'snapshot',
      worktree_name: wt.name,
      snapshot_id: id,
      engine: engine.name,
      // doctor reads these to settle the head after a crash (src/doctor/intentRepairs.ts)
      ...(opts.offLine ? { details: { off_line: true } } : leftTip ? { details: { new_line_from: parentId, left_line_tip: leftTip, pin_left: pinLeft } } : {}),
    });
    faultPoint('snapshot.1-intent');
    let published = false;
    let m: MaterializeResult | undefined;
    const idx = IndexDb.open(layout);
    tracePhase('snapshot: lock, intent, index open');
    try {
      // 2. materialise into .jvs/snapshots/<id>.tmp/ — incrementally: unchanged files are
      //    hard-linked from the parent (copy engine) or cloned without being read,
      //    changed files are hashed while copied.
      // A compressed parent holds `<name>.gz` files: nothing of it can be linked by name.
      const parentCompressed = !!parentId && !!compressionOf(readDescriptor(layout, parentId));
      const known = snapshotKnowledge(layout, idx, wt.name, parentId, engine.name === 'copy' && !parentCompressed);
      tracePhase('snapshot: index read');
      m = materializeTree(payload, tmpDir, engine, {
        include,
        ...(known ? { known } : {}),
        deferFinish: true,
        probeNs,
        ...(walk ? { walk } : {}),
        onProgress: opts.reporter ? (d, t) => opts.reporter!.progress('snapshot', d, t) : undefined,
      });
      // The payload root hash (step 4, from the entries) and the index's encoding of the
      // manifest are worked out while something else runs: the hard links still being
      // made in the background, or else the flush of the finished tree (step 3).
      // The index's chunks come first: the root hash is then taken from their bytes
      // (most are the parent's, already encoded), not from the entries packed anew.
      const entries = m.entries;
      const hashEntries = () => {
        idx?.prepareList(entries);
        tracePhase('snapshot: index chunks');
        const records = idx?.preparedRecords(entries);
        const h = (records && rootHashOfRecords(records)) ?? rootHashOf(entries);
        tracePhase('snapshot: root hash');
        return h;
      };
      let rootHash: string;
      let flush: { wait(): void };
      if (m.pending) {
        rootHash = hashEntries();
        // Links that failed became copies: entries changed, both are worked out again.
        if (m.finish?.()) rootHash = hashEntries();
        faultPoint('snapshot.2-materialize');
        tracePhase('snapshot: materialize');
        // 3. fsync the tree
        flush = startSyncTree(tmpDir, m.entries);
      } else {
        m.finish?.();
        faultPoint('snapshot.2-materialize');
        tracePhase('snapshot: materialize');
        // 3. fsync the tree (in the background while the hash is computed)
        flush = startSyncTree(tmpDir, m.entries);
        rootHash = hashEntries();
      }
      flush.wait();
      // Whether this snapshot, and the worktree files its state vouches for, may hold
      // extended attributes (a restore then reads them; index/xattrFlags.ts). Linked
      // files carry the parent's. A partial snapshot keeps older records: "maybe".
      // A whole-tree clone (juicefs) was not looked at: "maybe", unless its filesystem keeps none.
      const mayXattrs = (m.xattrsSeen ?? filesystemKeepsXattrs(payload)) || (!!known && snapshotMayHoldXattrs(idx, parentId));
      // The compressed layout's `.gz` files are new: attributes the tree has are not stored.
      const compressedXattrs = !!opts.compression && mayXattrs && anyXattrs(tmpDir, m.entries.map((e) => e.rel));
      // 3b. compressed layout (the root hash above describes the tree before compression)
      if (opts.compression) compressStage(tmpDir, m.entries, opts.compression.level);
      faultPoint('snapshot.3-fsync');
      tracePhase('snapshot: fsync tree');
      // 4. payload root hash: computed above
      // 5. descriptor tmp
      const d: Descriptor = {
        snapshot_id: id,
        ...(parentId ? { parent_id: parentId } : {}),
        worktree_name: wt.name,
        created_at: createdAt,
        ...(note ? { note } : {}),
        ...(tags.length ? { tags } : {}),
        engine: engine.name,
        payload_root_hash: rootHash,
        descriptor_checksum: '',
        integrity_state: 'verified',
        ...(partial.length ? { partial_paths: partial } : {}),
        ...(opts.compression ? { compression: { ...opts.compression } } : {}),
      };
      d.descriptor_checksum = descriptorChecksum(d);
      fs.rmSync(layout.descriptorTmp(id), { force: true });
      writeFileDurable(layout.descriptorTmp(id), serializeDescriptor(d));
      faultPoint('snapshot.5-descriptor-tmp');
      // 6. .READY inside the staged snapshot
      const ready = serializeReady({
        snapshot_id: id,
        completed_at: formatTimestamp(new Date()),
        payload_root_hash: rootHash,
        engine: engine.name,
        descriptor_checksum: d.descriptor_checksum,
      });
      if (opts.compression) writeFileDurable(path.join(tmpDir, storedName(READY_FILE)), compressedReady(ready, opts.compression.level));
      else writeFileDurable(path.join(tmpDir, READY_FILE), ready);
      faultPoint('snapshot.6-ready');
      const degraded = [...(engineNote ? [engineNote] : []), ...m.degraded, ...(compressedXattrs ? [COMPRESSED_XATTRS] : [])];
      const files = m.entries.filter((e) => e.type === 'file').length;
      let newLine: SnapshotResult['new_line'];
      withPublishLock(layout, lockOpts, () => {
        // 7. publish the snapshot folder
        fs.renameSync(tmpDir, layout.snapshotDir(id));
        fsyncDir(layout.snapshots);
        published = true;
        faultPoint('snapshot.7-publish-dir');
        // 8. publish the descriptor
        fs.renameSync(layout.descriptorTmp(id), layout.descriptor(id));
        fsyncDir(layout.descriptors);
        faultPoint('snapshot.8-publish-descriptor');
        // 9. worktree head and latest, last. The tip of a line this one leaves is pinned
        //    first (never lost to gc); an off-line snapshot is pinned and moves nothing.
        if (opts.offLine) {
          pinByOperation(layout, id, opts.offLine.reason);
        } else {
          if (leftTip && parentId) newLine = pinLeft ? pinLeftLine(layout, wt.name, parentId, leftTip) : { from_snapshot_id: parentId, left_line_tip: leftTip, pinned: false };
          writeWorktreeConfig(layout, { ...wt, head_snapshot_id: id, latest_snapshot_id: id });
        }
        faultPoint('snapshot.9-head');
        // 10. complete the intent, append audit
        completeIntent(layout, id);
        faultPoint('snapshot.10-intent-done');
        tracePhase('snapshot: publish');
        appendAudit(layout, {
          event_type: 'snapshot_create',
          snapshot_id: id,
          worktree_name: wt.name,
          details: {
            engine: engine.name,
            payload_root_hash: rootHash,
            ...(opts.compression ? { compression: { ...opts.compression } } : {}),
            files,
            ...(degraded.length ? { degraded } : {}),
            ...(newLine ? { new_line_from: newLine.from_snapshot_id, left_line_tip: newLine.left_line_tip } : {}),
            ...(opts.offLine ? { off_line: true } : {}),
          },
        });
      });
      // (cache, after the protocol) manifest, worktree state and catalog row in the index,
      // and whether they may hold extended attributes (computed before the publish, see
      // there): one transaction, so one journal commit (~4 fsyncs each; the two notes
      // were two more), and the notes never lag the lists they describe.
      const record = () => {
        recordSnapshot(idx, layout, id, wt.name, entries, probeNs, partial);
        noteSnapshotXattrs(idx, id, mayXattrs);
        noteWorktreeXattrs(idx, wt.name, id, mayXattrs || partial.length > 0);
      };
      if (idx) idx.transaction(record);
      tracePhase('snapshot: audit, index write');
      return {
        snapshot_id: id,
        ...(d.parent_id ? { parent_id: d.parent_id } : {}),
        worktree_name: wt.name,
        created_at: createdAt,
        ...(note ? { note } : {}),
        tags,
        ...(partial.length ? { partial_paths: partial } : {}),
        engine: engine.name,
        payload_root_hash: rootHash,
        files,
        bytes: m.bytes,
        duration_ms: Date.now() - started,
        degraded,
        incremental: { ...(m.stats ?? { linked: 0, copied: 0, compared: 0, bytesCopied: 0 }), index: !!idx },
        ...(newLine ? { new_line: newLine } : {}),
        ...(opts.offLine ? { off_line: true } : {}),
      };
    } catch (e) {
      if (!published) {
        // Nothing was visible yet: remove the stage so a failed snapshot leaves no trace
        // (after background links stopped writing into it).
        try {
          m?.finish?.();
        } catch {
          /* already failing: the stage goes anyway */
        }
        fs.rmSync(tmpDir, { recursive: true, force: true });
        fs.rmSync(layout.descriptorTmp(id), { force: true });
        completeIntent(layout, id);
      }
      throw fromSystemError(e, 'snapshot failed');
    } finally {
      idx?.close();
    }
  });
}

function hasRootReady(payloadRoot: string): boolean {
  try {
    fs.lstatSync(path.join(payloadRoot, READY_FILE));
    return true;
  } catch {
    return false;
  }
}

/**
 * Pin the tip of the line a worktree leaves when it starts a new one, unless that tip
 * is an ancestor of the new line's parent (then nothing is left behind).
 */
function pinLeftLine(layout: Layout, worktree: string, from: string, tip: string): NonNullable<SnapshotResult['new_line']> {
  for (let cur: string | undefined = from, n = 0; cur && n < 100_000; n++) {
    if (cur === tip) return { from_snapshot_id: from, left_line_tip: tip, pinned: false };
    try {
      cur = readDescriptor(layout, cur).parent_id;
    } catch {
      break;
    }
  }
  pinByOperation(layout, tip, `tip of the line worktree '${worktree}' left when it started a new line from ${from}`);
  return { from_snapshot_id: from, left_line_tip: tip, pinned: true };
}

/** The filesystem clock; 0 when it cannot be read (then nothing recorded now is ever trusted: safe, slower). */
function safeProbe(dir: string): bigint {
  try {
    return fsClockNs(dir);
  } catch {
    return 0n;
  }
}

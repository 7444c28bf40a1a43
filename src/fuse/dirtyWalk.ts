import { startWalk } from '../fsutil/walk.js';
import { native, type ScanReuse } from '../native/native.js';

/** Folders of a snapshot's walk, and how many of them were taken from the baseline without being read. */
export interface WalkStats {
  folders: number;
  reused: number;
}

/** What changed in current/ since the last take (native/fuse/dirty.c). */
export interface DirtyTracker {
  take(): { all: boolean; dirs: string[]; trees: string[] };
}

/**
 * Dirty tracking for control-file snapshots: the stat walk of a snapshot reads only
 * the folders that changed since a baseline scan and takes the rest from that scan.
 *
 * The tracker (inotify on every folder of the worktree, so writes through the mount
 * and changes behind its back alike) says which folders changed since its last take;
 * the baseline is the whole-tree scan that began after that take: the previous
 * control-file snapshot's own scan, or one started in the background after a
 * control-file restore and at mount. A snapshot takes the tracker's list right before
 * its walk starts (after the pre-snapshot hook, whose changes must count) and hands
 * both to the addon's scan (native/jvs_tree.c reuse_take); its own scan becomes the
 * next baseline. Any doubt (no baseline, tracker off or overflowing, a folder moved
 * within the tree, a failed snapshot) makes the next walk a full one.
 */
export class DirtyWalk {
  private baseline: object | undefined;

  constructor(
    private readonly tracker: DirtyTracker,
    private readonly payload: string,
  ) {}

  /** Options for one createSnapshot: `walkReuse`, `onScan`; then `settle(ok)` after it. */
  forSnapshot(): { walkReuse: () => ScanReuse | undefined; onScan: (scan: object) => void; settle: (ok: boolean) => WalkStats | undefined } {
    let scan: object | undefined;
    const previous = this.baseline;
    this.baseline = undefined; // until this snapshot's scan has begun and the snapshot succeeded
    return {
      walkReuse: () => {
        const d = this.tracker.take();
        return previous && !d.all ? { previous, dirs: d.dirs, trees: d.trees } : undefined;
      },
      onScan: (s) => (scan = s),
      settle: (ok) => {
        if (ok && scan) this.baseline = scan;
        return scan ? native()?.scanTreeStats?.(scan) : undefined;
      },
    };
  }

  /** After a control-file restore (inside the cut) and at mount: a new epoch and a baseline scan in the background. */
  rebase(): void {
    this.tracker.take();
    this.baseline = startWalk(this.payload).scan;
  }
}

/**
 * The consistent cut of a control-file snapshot or restore. Changes to `current/` are
 * served in C (native/fuse/) and hold the session's write gate shared; a control-file
 * request takes it exclusively through this class: new changes wait, and the request
 * starts only after every change already running has finished. So every write that
 * returned before the request is in the snapshot and none that started after it.
 */
/** The C session's gate: hold waits for running changes and holds new ones. */
export interface NativeGate {
  hold(): void;
  release(): void;
  /** Write the kernel's dirty pages of the mount back first (writeback cache); off the JS thread. */
  flush?(): Promise<void>;
}

export class WriteGate {
  private native: NativeGate | undefined;
  private exclusive = false;
  private waiting: Array<() => void> = [];

  /** The C session's gate (set by the adapter); without one only requests are serialised. */
  attachNative(gate: NativeGate): void {
    this.native = gate;
  }

  /** Write the kernel's dirty pages of the mount back (no hold); for the CLI's snapshot and restore. */
  async flushNative(): Promise<void> {
    await this.native?.flush?.();
  }

  /** Run `fn` alone: with changes through the mount held until it returns. */
  async exclusiveRun<T>(fn: () => T | Promise<T>): Promise<T> {
    // One exclusive holder at a time: queue behind a current one.
    while (this.exclusive) await new Promise<void>((r) => this.waiting.push(r));
    this.exclusive = true;
    try {
      // With the kernel's writeback cache, a write() that returned may still sit in the
      // page cache: write it back (through the mount, ungated) before holding changes.
      await this.native?.flush?.();
      // Blocks this thread until running C changes finish; they never wait for JS.
      this.native?.hold();
      try {
        return await fn();
      } finally {
        this.native?.release();
      }
    } finally {
      this.exclusive = false;
      for (const r of this.waiting.splice(0)) r();
    }
  }
}

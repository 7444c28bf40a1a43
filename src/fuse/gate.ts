/**
 * The consistent cut of a control-file snapshot: mutations arriving through the mount
 * run as shared holders; a snapshot (or restore) takes the gate exclusively. While it
 * is held, new mutations wait; the exclusive holder starts only after every mutation
 * already running has finished. So every write that returned before the request is in
 * the snapshot and none that started after it.
 */
/** A lock held by mutations served outside JS (the C fast path); hold waits for them. */
export interface NativeGate {
  hold(): void;
  release(): void;
  /** Write the kernel's dirty pages of the mount back first (writeback cache); off the JS thread. */
  flush?(): Promise<void>;
}

export class WriteGate {
  private native: NativeGate | undefined;
  private running = 0;
  private exclusive = false;
  private waiting: Array<() => void> = [];
  private drained: Array<() => void> = [];

  /** True while an exclusive holder runs or waits (mutations will queue). */
  get held(): boolean {
    return this.exclusive;
  }

  /** Also hold the C fast path's mutations while exclusive (set by the adapter). */
  attachNative(gate: NativeGate): void {
    this.native = gate;
  }

  /** Write the kernel's dirty pages of the mount back (no hold); for the CLI's snapshot and restore. */
  async flushNative(): Promise<void> {
    await this.native?.flush?.();
  }

  /** Run a mutation; it waits while an exclusive holder has the gate. */
  async shared<T>(fn: () => T | Promise<T>): Promise<T> {
    while (this.exclusive) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      if (this.running === 0) for (const r of this.drained.splice(0)) r();
    }
  }

  /** Run `fn` alone: after running mutations finish, with new ones held until it returns. */
  async exclusiveRun<T>(fn: () => T | Promise<T>): Promise<T> {
    // One exclusive holder at a time: queue behind a current one.
    while (this.exclusive) await new Promise<void>((r) => this.waiting.push(r));
    this.exclusive = true;
    try {
      // With the kernel's writeback cache, a write() that returned may still sit in the
      // page cache: write it back (through the mount, ungated) before holding changes.
      await this.native?.flush?.();
      while (this.running > 0) await new Promise<void>((r) => this.drained.push(r));
      // Blocks this thread until running C mutations finish; they never wait for JS.
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

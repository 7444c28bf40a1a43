/**
 * Progress reaches the edge through this interface; operations never print. The CLI
 * draws a bar on a TTY, the mount and tests pass nothing.
 */
export interface Reporter {
  /**
   * `done` of `total` bytes, or with `unit` of `total` items (e.g. "snapshots"); item
   * counts may be fractional (a part of the current item is done).
   */
  progress(task: string, done: number, total: number, unit?: string): void;
  /** A lock has been busy for a while: what the command is waiting for (said once per lock). */
  waiting?(message: string): void;
}

export const silentReporter: Reporter = { progress() {} };

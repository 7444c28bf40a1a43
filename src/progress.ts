/**
 * Progress reaches the edge through this interface; operations never print. The CLI
 * draws a bar on a TTY, the mount and tests pass nothing.
 */
export interface Reporter {
  progress(task: string, done: number, total: number): void;
  /** A lock has been busy for a while: what the command is waiting for (said once per lock). */
  waiting?(message: string): void;
}

export const silentReporter: Reporter = { progress() {} };

import { createRequire } from 'node:module';
import type { Reporter } from '../progress.js';
import type { GlobalOptions } from './output.js';

/**
 * A progress bar on a TTY stderr (cli-progress, loaded only when a bar is drawn);
 * nothing otherwise. Small jobs (< 64 MiB) draw no bar.
 */
export function cliReporter(g: GlobalOptions): Reporter | undefined {
  if (g.json || g.quiet || !g.progress || !process.stderr.isTTY) return undefined;
  let bar: import('cli-progress').SingleBar | undefined;
  let started = Date.now();
  return {
    progress(task, done, total) {
      if (!bar) {
        if (total < 64 << 20 || Date.now() - started < 300) return;
        const require = createRequire(import.meta.url);
        const cp = require('cli-progress') as typeof import('cli-progress');
        bar = new cp.SingleBar({ format: `${task} [{bar}] {percentage}% | {value}/{total} MiB | eta {eta}s`, stream: process.stderr, clearOnComplete: true }, cp.Presets.shades_classic);
        bar.start(Math.ceil(total / 2 ** 20), 0);
        started = Date.now();
      }
      bar.update(Math.floor(done / 2 ** 20));
      if (done >= total) {
        bar.stop();
        bar = undefined;
      }
    },
    waiting(message) {
      process.stderr.write(`${message}\n`);
    },
  };
}

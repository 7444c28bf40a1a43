import { createRequire } from 'node:module';
import type { Reporter } from '../progress.js';
import type { GlobalOptions } from './output.js';

/** Items are drawn in thousandths, so a bar moves within one long item (a large snapshot). */
const PARTS = 1000;

/**
 * A progress bar on a TTY stderr (cli-progress, loaded only when a bar is drawn);
 * nothing otherwise (a pipe, --json, --quiet, --no-progress or progress_enabled: false).
 * A bar appears only for work still running after a moment (JVS_PROGRESS_DELAY_MS,
 * default 300 ms): byte jobs of at least 64 MiB, item jobs of at least two items.
 */
export function cliReporter(g: GlobalOptions): Reporter | undefined {
  if (g.json || g.quiet || !g.progress || !process.stderr.isTTY) return undefined;
  const delay = Number(process.env.JVS_PROGRESS_DELAY_MS ?? 300);
  let bar: import('cli-progress').SingleBar | undefined;
  let barTask = '';
  let started = Date.now();
  return {
    progress(task, done, total, unit) {
      if (bar && barTask !== task) {
        bar.stop();
        bar = undefined;
      }
      if (!bar) {
        if ((unit ? total < 2 : total < 64 << 20) || Date.now() - started < delay) return;
        const require = createRequire(import.meta.url);
        const cp = require('cli-progress') as typeof import('cli-progress');
        const format = unit ? `${task} [{bar}] {percentage}% | {items}/{count} ${unit} | eta {eta}s` : `${task} [{bar}] {percentage}% | {value}/{total} MiB | eta {eta}s`;
        bar = new cp.SingleBar({ format, stream: process.stderr, clearOnComplete: true }, cp.Presets.shades_classic);
        bar.start(unit ? total * PARTS : Math.ceil(total / 2 ** 20), 0, unit ? { items: 0, count: total } : {});
        barTask = task;
        started = Date.now();
      }
      if (unit) bar.update(Math.floor(done * PARTS), { items: Math.floor(done), count: total });
      else bar.update(Math.floor(done / 2 ** 20));
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

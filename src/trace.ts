/**
 * Phase timings for finding where an operation's time goes: with JVS_TRACE=1 each
 * `tracePhase` mark is printed to stderr (ms since the previous mark and since start)
 * when the process exits. Costs one env lookup when off.
 */
const on = process.env.JVS_TRACE === '1';
const marks: Array<[string, number]> = [];
let last = 0;

export function tracePhase(name: string): void {
  if (!on) return;
  const now = performance.now();
  marks.push([name, now - last]);
  last = now;
  if (marks.length === 1) {
    process.once('exit', () => {
      let at = 0;
      for (const [n, d] of marks) process.stderr.write(`jvs trace: ${(at += d).toFixed(1).padStart(7)} ms  +${d.toFixed(1).padStart(6)}  ${n}\n`);
    });
  }
}

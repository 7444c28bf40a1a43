/**
 * Phase timings for finding where an operation's time goes: with JVS_TRACE=1 each
 * `tracePhase` mark is printed to stderr (ms since the previous mark and since start,
 * and the process's user and system CPU ms in that phase; background native threads
 * count there too) when the process exits. Costs one env lookup when off.
 */
const on = process.env.JVS_TRACE === '1';
const marks: Array<[string, number, number, number]> = [];
let last = 0;
let lastCpu = { user: 0, system: 0 };

export function tracePhase(name: string): void {
  if (!on) return;
  const now = performance.now();
  const cpu = process.cpuUsage();
  marks.push([name, now - last, (cpu.user - lastCpu.user) / 1000, (cpu.system - lastCpu.system) / 1000]);
  last = now;
  lastCpu = cpu;
  if (marks.length === 1) {
    process.once('exit', () => {
      let at = 0;
      const ms = (x: number) => x.toFixed(1).padStart(6);
      for (const [n, d, u, s] of marks) process.stderr.write(`jvs trace: ${(at += d).toFixed(1).padStart(7)} ms  +${ms(d)}  (user ${ms(u)} sys ${ms(s)})  ${n}\n`);
    });
  }
}

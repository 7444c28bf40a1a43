/**
 * Fault injection for the crash suite: `JVS_FAULT=<step>` makes the process kill
 * itself with SIGKILL when it reaches that named protocol step (e.g.
 * `snapshot.5-descriptor-tmp`). Test-only; costs one string compare per step.
 */
export function faultPoint(step: string): void {
  const want = process.env.JVS_FAULT;
  if (want && want === step) process.kill(process.pid, 'SIGKILL');
}

/**
 * Fault injection for the crash suite: `JVS_FAULT=<step>` makes the process kill
 * itself with SIGKILL when it reaches that named protocol step (e.g.
 * `snapshot.5-descriptor-tmp`); `JVS_FAULT=<step>:stop` stops it there (SIGSTOP) so a
 * test can change the files under it and then let it go on (SIGCONT). Test-only;
 * costs one string compare per step.
 */
export function faultPoint(step: string): void {
  const want = process.env.JVS_FAULT;
  if (!want) return;
  if (want === step) process.kill(process.pid, 'SIGKILL');
  else if (want === `${step}:stop`) process.kill(process.pid, 'SIGSTOP');
}

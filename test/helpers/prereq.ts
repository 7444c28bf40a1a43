import { it } from 'vitest';

/**
 * Tests that need a real component (FUSE, an XFS loop mount, JuiceFS). When it is
 * missing the test is skipped with a loud reason locally; with JVS_REQUIRE_PREREQS=1
 * (set by .ci/run) a missing prerequisite is a failing test instead.
 */
export const REQUIRE_PREREQS = process.env.JVS_REQUIRE_PREREQS === '1' || process.env.CI === 'true';

export function itWith(prereq: string, missing: string | undefined, name: string, fn: () => unknown | Promise<unknown>, timeout?: number): void {
  if (!missing) {
    it(name, fn, timeout);
    return;
  }
  if (REQUIRE_PREREQS) {
    it(name, () => {
      throw new Error(`prerequisite ${prereq} is missing: ${missing} (JVS_REQUIRE_PREREQS=1 turns this into a failure)`);
    });
    return;
  }
  console.warn(`\n!!! SKIPPING "${name}": prerequisite ${prereq} is missing: ${missing}\n`);
  it.runIf(false)(`${name} [SKIPPED: ${prereq} missing]`, fn);
}

import type { Command } from 'commander';
import type { CommandOutput, GlobalOptions } from './output.js';

/** Wraps a handler: parses globals, prints its output, records the exit code. */
export type Runner = <A extends unknown[]>(fn: (g: GlobalOptions, ...args: A) => Promise<CommandOutput>) => (...args: A) => Promise<void>;

/** A command group adds its commands to the program; handlers load lazily. */
export type Registrar = (program: Command, run: Runner) => void;

/** A handler from a module loaded only when the command runs (keeps start-up light). */
export function lazy<M>(load: () => Promise<M>, name: keyof M) {
  return (async (g: GlobalOptions, ...rest: unknown[]) =>
    ((await load())[name] as (...a: unknown[]) => Promise<CommandOutput>)(g, ...rest)) as (g: GlobalOptions, ...rest: any[]) => Promise<CommandOutput>;
}

import type { Command } from 'commander';
import { EXIT } from '../../core/exit-codes.js';
import { StreamctlError } from '../../core/errors.js';
import { outputFor } from './context.js';
import type { Output } from './output.js';

/**
 * Wraps a subcommand's action: the action returns an exit code; a StreamctlError becomes
 * its message, its problems and its documented exit code; anything else is a runtime
 * failure (exit 1) with the message only, and the stack at --log-level debug.
 */
export function action<A extends unknown[]>(run: (out: Output, command: Command, ...args: A) => Promise<number>) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args[args.length - 1] as Command;
    const out = outputFor(command);
    let code: number;
    try {
      code = await run(out, command, ...(args.slice(0, -2) as A));
    } catch (err) {
      if (err instanceof StreamctlError) {
        out.error(err.message, err.exitCode, err.problems);
        code = err.exitCode;
      } else {
        out.error((err as Error).message ?? String(err), EXIT.RUNTIME);
        out.logger().debug('stack trace', { stack: (err as Error).stack });
        code = EXIT.RUNTIME;
      }
    }
    process.exitCode = code;
    exitEvenIfHeld(code, (message) => out.logger().warn(message));
  };
}

/**
 * The command is done once its action returns, and everything it opened is closed: a
 * client library that still holds a handle (librdkafka after a call it never answered,
 * seen once on a fresh broker; kafkajs's idle socket after an outage) must not keep a
 * cron job or a service from exiting. Exits with `code` after the grace if the event loop
 * has not emptied by itself; the timer never holds the process either.
 */
export function exitEvenIfHeld(code: number, warn: (message: string) => void, graceMs = EXIT_GRACE_MS): void {
  setTimeout(() => {
    warn(`done, but a connection was still open after ${graceMs / 1000} s: exiting anyway`);
    process.exit(code);
  }, graceMs).unref();
}

/** How long a finished command waits for the event loop to empty by itself. */
const EXIT_GRACE_MS = 5000;

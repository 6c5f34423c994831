import { Command } from 'commander';
import { NotBuiltYetError } from '../core/errors.js';
import { contextFor } from './shared/context.js';
import { action } from './shared/run.js';

/**
 * The action of a subcommand whose engine is not written yet: it still checks the config
 * (so a wrong config is caught now), then says plainly that nothing was done (exit 1).
 */
export function notBuiltYet(name: string) {
  return action(async (out, command: Command) => {
    contextFor(command, out);
    throw new NotBuiltYetError(name);
  });
}

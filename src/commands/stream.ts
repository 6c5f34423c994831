import { Command } from 'commander';
import { notBuiltYet } from './not-built.js';
import { oneOf } from './shared/parsers.js';

export const ROLES = ['capture', 'deliver', 'all'] as const;

export function streamCommand(): Command {
  return new Command('stream')
    .description('run the pipeline as a service: capture PostgreSQL changes into Kafka and deliver them to the sinks')
    .option('--role <role>', `what this process does: ${ROLES.join(' | ')}`, oneOf(ROLES), 'all')
    .action(notBuiltYet('stream'));
}

import { Command } from 'commander';
import { notBuiltYet } from './not-built.js';
import { oneOf, positiveInt } from './shared/parsers.js';

export function replayDlqCommand(): Command {
  return new Command('replay-dlq')
    .description('inspect, filter and re-deliver dead-lettered events (a dry run unless --execute)')
    .option('--sink <sink>', 'only events dead-lettered by this sink', oneOf(['redis', 'bigquery', 'http'] as const))
    .option('--table <schema.table>', 'only events of this table')
    .option('--since <iso-time>', 'only events dead-lettered at or after this time')
    .option('--limit <n>', 'at most this many events', positiveInt())
    .option('--execute', 're-deliver for real (without it, only show what would be replayed)')
    .action(notBuiltYet('replay-dlq'));
}

import { Command } from 'commander';
import { notBuiltYet } from './not-built.js';
import { collect, positiveInt, positiveNumber } from './shared/parsers.js';

export function backfillCommand(): Command {
  return new Command('backfill')
    .description('load the rows that already exist into the pipeline as read events (resumable, rate-limitable)')
    .option('--table <schema.table>', 'table to load (repeat for several)', collect)
    .option('--where <sql>', 'only rows matching this SQL condition')
    .option('--chunk-size <rows>', 'rows per chunk and Kafka transaction', positiveInt(1_000_000), 10_000)
    .option('--rate <rows/s>', 'at most this many rows per second', positiveNumber)
    .option('--resume <run-id>', 'continue an interrupted run where it stopped')
    .action(notBuiltYet('backfill'));
}

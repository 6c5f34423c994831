import { Command } from 'commander';
import { notBuiltYet } from './not-built.js';
import { positiveInt, positiveNumber } from './shared/parsers.js';

export function stressTestCommand(): Command {
  return new Command('stress-test')
    .description('drive a load into PostgreSQL and measure latency, throughput, loss and duplicates against SLOs')
    .option('--rate <events/s>', 'offered load', positiveNumber, 1000)
    .option('--duration <seconds>', 'how long to drive the load', positiveInt(86_400), 60)
    .option('--slo-p99-ms <ms>', 'fail (exit 3) when p99 end-to-end latency is above this', positiveNumber, 200)
    .option('--report <file>', 'also write the JSON report to this file')
    .action(notBuiltYet('stress-test'));
}

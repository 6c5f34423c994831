import { Command } from 'commander';
import { Capturer } from '../core/capture/capturer.js';
import { NotBuiltYetError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { PipelineMetrics } from '../core/metrics.js';
import { startMetricsServer } from '../core/metrics-server.js';
import { contextFor } from './shared/context.js';
import { oneOf } from './shared/parsers.js';
import { action } from './shared/run.js';

export const ROLES = ['capture', 'deliver', 'all'] as const;
type Role = (typeof ROLES)[number];

export function streamCommand(): Command {
  return new Command('stream')
    .description('run the pipeline as a service: capture PostgreSQL changes into Kafka and deliver them to the sinks')
    .option('--role <role>', `what this process does: ${ROLES.join(' | ')}`, oneOf(ROLES), 'all')
    .addHelpText(
      'after',
      '\nSIGINT/SIGTERM: finish the open Kafka transaction, confirm what is committed, exit 0; a second signal exits 130 at once.',
    )
    .action(
      action(async (out, command) => {
        const { role } = command.opts<{ role: Role }>();
        const { config } = contextFor(command, out);
        if (role !== 'capture') throw new NotBuiltYetError(`stream --role ${role}`);
        const logger = out.logger('capture');
        const metrics = new PipelineMetrics({ defaultMetrics: true });
        const capturer = new Capturer(config, logger, metrics);

        const stop = new AbortController();
        let signals = 0;
        const onSignal = (name: string) => {
          signals++;
          if (signals === 1) {
            logger.info(`${name}: finishing the open Kafka transaction, then stopping (again to stop at once)`);
            stop.abort();
          } else {
            logger.warn(`${name} again: stopping at once; the checkpoint in Kafka says where to resume`);
            process.exit(EXIT.INTERRUPTED);
          }
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);

        await capturer.setup();
        let streaming = false;
        const server = await startMetricsServer(metrics, { host: config.metrics.host, port: config.metrics.port, ready: () => streaming });
        logger.info('metrics listening', { url: `http://${server.address.address}:${server.address.port}/metrics` });
        try {
          streaming = true;
          const stats = await capturer.run(stop.signal);
          logger.info('capture stopped', {
            events_written: stats.eventsWritten,
            kafka_transactions: stats.transactionsCommitted,
            checkpoint: stats.checkpoint ? `${stats.checkpoint.lsn}${stats.checkpoint.complete ? '' : `#${stats.checkpoint.position}`}` : 'none',
          });
        } finally {
          streaming = false;
          await server.close();
        }
        return EXIT.OK;
      }),
    );
}

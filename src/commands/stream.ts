import { Command } from 'commander';
import { deliverySecrets, Redactor, type Config } from '../core/config/index.js';
import { SINK_NAMES, type SinkName } from '../core/sinks/registry.js';
import { StreamctlError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import type { Logger } from '../core/logger.js';
import { PipelineMetrics } from '../core/metrics.js';
import { startMetricsServer } from '../core/metrics-server.js';
import { PipelineMonitor } from '../core/metrics/monitor.js';
import { ComponentWatch, componentsFor, type DownComponent } from '../core/health/watch.js';
import { endpointOf } from '../core/health/probes.js';
import { openOutages } from '../core/outages.js';
import { contextFor } from './shared/context.js';
import { collect, oneOf } from './shared/parsers.js';
import { action } from './shared/run.js';
import { stopOnSignals } from './shared/signals.js';

export const ROLES = ['capture', 'deliver', 'all'] as const;
type Role = (typeof ROLES)[number];

/** `--sink`: the config with every other sink switched off (a named sink must be enabled in the config). */
function onlySinks(config: Config, only: string[] | undefined): Config {
  if (!only || only.length === 0) return config;
  const problems = only.filter((s) => !(SINK_NAMES as readonly string[]).includes(s)).map((s) => `--sink ${s}: unknown sink (one of ${SINK_NAMES.join(', ')})`);
  problems.push(...only.filter((s) => (SINK_NAMES as readonly string[]).includes(s) && !config.sinks[s as SinkName].enabled).map((s) => `--sink ${s}: that sink is disabled in the config`));
  if (problems.length > 0) throw new StreamctlError('bad --sink', EXIT.USAGE, problems);
  const sinks = { ...config.sinks };
  for (const name of SINK_NAMES) sinks[name] = { ...config.sinks[name], enabled: only.includes(name) } as never;
  return { ...config, sinks };
}

export function streamCommand(): Command {
  return new Command('stream')
    .description('run the pipeline as a service: capture PostgreSQL changes into Kafka and deliver them to the sinks')
    .option('--role <role>', `what this process does: ${ROLES.join(' | ')}`, oneOf(ROLES), 'all')
    .option('--sink <name>', `deliver only to this sink (repeatable; ${SINK_NAMES.join(' | ')}): one deliverer process per sink`, collect)
    .addHelpText(
      'after',
      '\nSIGINT/SIGTERM: finish the open Kafka transaction and the batches in flight, confirm what is\ncommitted, exit 0; a second signal exits 130 at once.',
    )
    .action(
      action(async (out, command) => {
        const { role, sink: only } = command.opts<{ role: Role; sink?: string[] }>();
        const { config: loaded } = contextFor(command, out);
        const config = onlySinks(loaded, only);
        out.useRedactor(Redactor.forConfig(config, deliverySecrets(config)));
        const logger = out.logger('stream');
        const metrics = new PipelineMetrics({ defaultMetrics: true });
        // Each role loads only its own half: a capture-only process starts without the delivery
        // code (and its sinks' clients), a deliverer without capture's.
        const capturer = role === 'deliver' ? null : new (await import('../core/capture/capturer.js')).Capturer(config, logger.child('capture'), metrics);
        const deliverer = role === 'capture' ? null : await deliveryOf(config, logger.child('deliver'), metrics);

        const stop = stopOnSignals(
          (name) => logger.info(`${name}: finishing what is in flight, then stopping (again to stop at once)`),
          (name) => logger.warn(`${name} again: stopping at once; checkpoints and offsets say where to resume`),
        );

        await capturer?.setup();
        let streaming = false;
        // Not ready while capture or a sink has work and no progress (health/progress.ts): `status` reads the reason here.
        const stuck = () => metrics.progress.stuck(config.health.stuckAfterSeconds * 1000);
        // Nor while a part it uses does not answer (health/watch.ts): /ready names it at once.
        const used = componentsFor(config, role);
        const watch = new ComponentWatch(config, logger.child('health'), used);
        // The parts down now: the watch's probes, and the servers a client of this process has
        // found gone (outages.ts) that the watch has not probed yet; one entry per part. Only
        // parts this role uses: a deliverer's slot measurement (metrics/monitor.ts) also reaches
        // PostgreSQL, but delivery goes on without it, so a PostgreSQL outage does not make a
        // `--role deliver` process unready (its log still says PostgreSQL is unreachable).
        const downParts = (): DownComponent[] => {
          const probed = watch.downNow();
          const seen = openOutages()
            .filter((o) => used.includes(o.server) && !probed.some((d) => d.component === o.server))
            .map((o) => ({ component: o.server, endpoint: endpointOf(o.server, config), error: `unreachable (${o.retries} retries so far)`, since: o.since.toISOString() }));
          return [...probed, ...seen];
        };
        watch.start();
        const server = await startMetricsServer(metrics, {
          host: config.metrics.host,
          port: config.metrics.port,
          // Nor while a sink that lost its state is rebuilt or refuses to go on (delivery/sink-state.ts).
          // Nor while a part it needs is down: found by its probes (health/watch.ts), or by a
          // client's failures, from the first one to the first success after it (outages.ts).
          ready: () => streaming && stuck().length === 0 && (deliverer?.sinkStateProblems().length ?? 0) === 0 && downParts().length === 0,
          readyDetail: () => ({ pipeline: config.pipeline.id, stuck: stuck(), sinks: deliverer?.sinkStateProblems() ?? [], down: downParts(), history_lost: deliverer?.historyLost() ?? [] }),
        });
        logger.info('metrics listening', { url: `http://${server.address.address}:${server.address.port}/metrics` });
        const monitor = new PipelineMonitor(config, metrics, logger.child('monitor'));
        monitor.start();
        try {
          await deliverer?.start();
          streaming = true;
          const waitForStop = new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
          const stats = capturer ? await capturer.run(stop.signal) : (await waitForStop, null);
          if (stats) {
            logger.info('capture stopped', {
              events_written: stats.eventsWritten,
              kafka_transactions: stats.transactionsCommitted,
              checkpoint: stats.checkpoint ? `${stats.checkpoint.lsn}${stats.checkpoint.complete ? '' : `#${stats.checkpoint.position}`}` : 'none',
            });
          }
        } finally {
          streaming = false;
          watch.stop();
          await deliverer?.stop();
          await monitor.stop();
          await server.close();
          // Everything is stopped and committed; a connection a client library keeps open
          // (seen with kafkajs after an outage) does not hold the exit: shared/run.ts.
        }
        return EXIT.OK;
      }),
    );
}

async function deliveryOf(config: Config, logger: Logger, metrics: PipelineMetrics) {
  const [{ Deliverer }, { OpenLetterCounter }] = await Promise.all([import('../core/delivery/deliverer.js'), import('../core/replay/open-letters.js')]);
  return new Deliverer(config, logger, metrics, (kafka) => new OpenLetterCounter(kafka, config));
}

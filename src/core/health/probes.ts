import type { Config } from '../config/types.js';
import { forwardLogs, librdkafkaSettings, nativeCall, Producer } from '../clients/librdkafka.js';
import type { Metadata } from '@confluentinc/kafka-javascript';
import type { Logger } from '../logger.js';
import type { AnySinkPlugin } from '../sinks/plugin.js';
import { SINK_PLUGINS, sinkConfigOf, sinkPlugin } from '../sinks/registry.js';
import type { ComponentHealth, ComponentName, ProbeResult } from './types.js';
import { timed } from '../timed.js';

/** Where each component is reached, as shown by `status` (no credentials); a sink says it itself. */
export function endpointOf(name: ComponentName, config: Config, plugins: readonly AnySinkPlugin[] = SINK_PLUGINS): string {
  if (name === 'postgres') return `${config.postgres.host}:${config.postgres.port}/${config.postgres.database}`;
  if (name === 'kafka') return config.kafka.brokers.join(',');
  const plugin = sinkPlugin(name, plugins);
  return plugin.endpoint(sinkConfigOf(config, plugin));
}

const down = (endpoint: string, err: unknown): ProbeResult => ({
  health: { state: 'down', endpoint, rtt_ms: null, detail: {}, error: err instanceof Error ? err.message : String(err) },
  problems: [],
});
const up = (endpoint: string, rtt_ms: number, detail: ComponentHealth['detail'] = {}): ProbeResult => ({
  health: { state: 'up', endpoint, rtt_ms, detail },
  problems: [],
});
const disabled = (endpoint: string): ProbeResult => ({ health: { state: 'disabled', endpoint, rtt_ms: null, detail: {} }, problems: [] });

export async function probeKafka(config: Config, logger: Logger): Promise<ProbeResult> {
  const endpoint = endpointOf('kafka', config);
  // One metadata request (what a client's connect is): status answers now, it does not
  // wait for a broker to come back. librdkafka's binding has no DescribeCluster, so the
  // cluster id and controller kafkajs gave are not shown; the brokers the cluster names are.
  const client = new Producer({ ...librdkafkaSettings(config.kafka), 'socket.connection.setup.timeout.ms': 3000 }, {});
  forwardLogs(client, logger, { quiet: true });
  try {
    const { value: metadata, ms } = await timed(() => nativeCall<Metadata>((done) => client.connect({ allTopics: false, timeout: 5000 }, done)));
    return up(endpoint, ms, { brokers: metadata.brokers.length });
  } catch (err) {
    return down(endpoint, err);
  } finally {
    await nativeCall((done) => client.disconnect(5000, (err) => done(err))).catch(() => {});
  }
}

/** A sink's component: its own health check (src/core/sinks/<name>/health.ts), or `disabled`. */
export async function probeSink(plugin: AnySinkPlugin, config: Config, logger: Logger, timeoutMs: number): Promise<ProbeResult> {
  const sinkConfig = sinkConfigOf(config, plugin);
  const endpoint = plugin.endpoint(sinkConfig);
  if (!sinkConfig.enabled) return disabled(endpoint);
  try {
    const { rtt_ms, detail } = await plugin.check(sinkConfig, { logger, timeoutMs });
    return up(endpoint, rtt_ms, detail);
  } catch (err) {
    return down(endpoint, err);
  }
}

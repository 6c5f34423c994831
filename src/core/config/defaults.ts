import { LOCAL_STACK } from '../local-stack.js';
import type { AnySinkPlugin } from '../sinks/plugin.js';
import { SINK_PLUGINS } from '../sinks/registry.js';
import type { Config } from './types.js';

/**
 * Defaults point at the local stack of `scripts/stack`, so `streamctl status` works with
 * no config at all on a developer machine. Retry policies are those of ARCHITECTURE.md:
 * Kafka retries forever; each sink's are in its folder (src/core/sinks/<name>/config.ts).
 */
export function defaultConfig(plugins: readonly AnySinkPlugin[] = SINK_PLUGINS): Config {
  return {
    pipeline: { id: 'default', topicPrefix: 'streamctl' },
    capture: { maxBatchEvents: 5000, maxBatchBytes: 8 * 1024 * 1024, lingerMs: 20, slotLagIntervalMs: 5000 },
    delivery: { maxBatchEvents: 500, lagIntervalMs: 5000, sessionTimeoutMs: 10000 },
    enrich: { tables: {}, maskKey: '', maskKeyFile: '', stamp: true },
    validation: { tables: {} },
    postgres: {
      host: LOCAL_STACK.postgres.host,
      port: LOCAL_STACK.postgres.port,
      user: LOCAL_STACK.postgres.user,
      password: LOCAL_STACK.postgres.password,
      database: LOCAL_STACK.postgres.database,
      tables: [],
      slot: '',
      publication: '',
      connectTimeoutMs: 5000,
    },
    kafka: {
      brokers: [...LOCAL_STACK.kafka.brokers],
      clientId: 'streamctl',
      partitions: 3,
      replicationFactor: 1,
      transactionTimeoutMs: 60000,
      maxRecordBytes: 16 * 1024 * 1024,
      retry: { retries: 'forever', initialDelayMs: 300, maxDelayMs: 30000 },
    },
    sinks: Object.fromEntries(plugins.map((plugin) => [plugin.name, plugin.defaults()])) as unknown as Config['sinks'],
    metrics: { host: '127.0.0.1', port: LOCAL_STACK.metrics.port },
    health: { stuckAfterSeconds: 300, checkIntervalSeconds: 30, slotWalWarnBytes: 1024 * 1024 * 1024 },
    log: { level: 'info' },
  };
}

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOCAL_STACK } from '../local-stack.js';
import type { Config, RetryPolicy } from './types.js';

/** The repository root, so the default key file of the local stack is found from any cwd. */
const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

const retry = (retries: RetryPolicy['retries'], initialDelayMs: number, maxDelayMs: number): RetryPolicy => ({
  retries,
  initialDelayMs,
  maxDelayMs,
});

/**
 * Defaults point at the local stack of `scripts/stack`, so `streamctl status` works with
 * no config at all on a developer machine. Retry policies are those of ARCHITECTURE.md:
 * Redis 3 retries with exponential backoff; BigQuery 5 retries with at most 60 s between;
 * HTTP 3 retries and a circuit breaker; Kafka retries forever.
 */
export function defaultConfig(): Config {
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
      retry: retry('forever', 300, 30000),
    },
    sinks: {
      redis: {
        enabled: true,
        host: LOCAL_STACK.redis.host,
        port: LOCAL_STACK.redis.port,
        password: '',
        db: 0,
        keyPrefix: 'streamctl:',
        rebuild: 'auto',
        retry: retry(3, 100, 5000),
        breaker: { consecutiveFailures: 1, halfOpenAfterMs: 10000 },
      },
      bigquery: {
        enabled: true,
        projectId: LOCAL_STACK.bigquery.projectId,
        dataset: LOCAL_STACK.bigquery.dataset,
        table: 'changes',
        location: 'US',
        apiEndpoint: LOCAL_STACK.bigquery.apiEndpoint,
        credentialsJson: '',
        credentialsFile: '',
        viewOnce: 'changes_once',
        viewLatest: 'latest',
        batchSize: 500,
        flushMs: 200,
        retry: retry(5, 1000, 60000),
        breaker: { consecutiveFailures: 1, halfOpenAfterMs: 60000 },
      },
      http: {
        enabled: true,
        url: LOCAL_STACK.http.url,
        healthUrl: '',
        hmacKey: '',
        hmacKeyFile: path.join(PROJECT_ROOT, LOCAL_STACK.http.hmacKeyFile),
        timeoutMs: 10000,
        batchSize: 1,
        retry: retry(3, 200, 10000),
        breaker: { consecutiveFailures: 5, halfOpenAfterMs: 30000 },
      },
    },
    metrics: { host: '127.0.0.1', port: LOCAL_STACK.metrics.port },
    health: { stuckAfterSeconds: 300, checkIntervalSeconds: 30, slotWalWarnBytes: 1024 * 1024 * 1024 },
    log: { level: 'info' },
  };
}

import type { Config } from '../config/types.js';
import { makeBigQuery } from '../clients/bigquery.js';
import { makeKafka } from '../clients/kafka.js';
import { makeRedis } from '../clients/redis.js';
import type { Logger } from '../logger.js';
import type { ComponentHealth, ComponentName, ProbeResult } from './types.js';
import { timed } from './timed.js';
import { redactUrl } from '../redact-url.js';

/** Where each component is reached, as shown by `status` (no credentials). */
export function endpointOf(name: ComponentName, config: Config): string {
  const { redis, bigquery, http } = config.sinks;
  switch (name) {
    case 'postgres':
      return `${config.postgres.host}:${config.postgres.port}/${config.postgres.database}`;
    case 'kafka':
      return config.kafka.brokers.join(',');
    case 'redis':
      return `${redis.host}:${redis.port}/${redis.db}`;
    case 'bigquery':
      return `${bigquery.apiEndpoint || 'https://bigquery.googleapis.com'} project=${bigquery.projectId}`;
    case 'http':
      return redactUrl(http.healthUrl || http.url);
  }
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
  // No retries: status answers now, it does not wait for a broker to come back.
  const admin = makeKafka(config.kafka, logger, { retries: 0, quiet: true }).admin();
  try {
    await admin.connect();
    const { value: cluster, ms } = await timed(() => admin.describeCluster());
    return up(endpoint, ms, { cluster_id: cluster.clusterId, brokers: cluster.brokers.length, controller: cluster.controller });
  } catch (err) {
    return down(endpoint, err);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export async function probeRedis(config: Config, logger: Logger): Promise<ProbeResult> {
  const sink = config.sinks.redis;
  const endpoint = endpointOf('redis', config);
  if (!sink.enabled) return disabled(endpoint);
  const redis = makeRedis(sink, logger, { failFast: true });
  // ioredis rejects connect() with a bare 'Connection is closed.'; the cause is in the error event.
  let cause: Error | undefined;
  redis.on('error', (err: Error) => {
    cause = err;
  });
  try {
    await redis.connect().catch((err: Error) => {
      throw cause ?? err;
    });
    const { ms } = await timed(() => redis.ping());
    const info = await redis.info('server');
    const version = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
    return up(endpoint, ms, { version });
  } catch (err) {
    return down(endpoint, err);
  } finally {
    redis.disconnect();
  }
}

export async function probeBigQuery(config: Config): Promise<ProbeResult> {
  const sink = config.sinks.bigquery;
  const endpoint = endpointOf('bigquery', config);
  if (!sink.enabled) return disabled(endpoint);
  try {
    const bq = makeBigQuery(sink, { autoRetry: false });
    const { value, ms } = await timed(() => bq.dataset(sink.dataset).exists());
    return up(endpoint, ms, { dataset: sink.dataset, dataset_exists: value[0] });
  } catch (err) {
    return down(endpoint, err);
  }
}

export async function probeHttp(config: Config, timeoutMs: number): Promise<ProbeResult> {
  const sink = config.sinks.http;
  const target = sink.healthUrl || sink.url;
  const endpoint = endpointOf('http', config);
  if (!sink.enabled) return disabled(endpoint);
  try {
    const { value: res, ms } = await timed(() =>
      fetch(target, { method: sink.healthUrl ? 'GET' : 'HEAD', signal: AbortSignal.timeout(timeoutMs) }),
    );
    await res.body?.cancel();
    // A health URL must say OK; the event URL only has to answer (405 to HEAD is fine).
    const healthy = sink.healthUrl ? res.ok : res.status < 500;
    return healthy ? up(endpoint, ms, { status: res.status }) : down(endpoint, new Error(`answered HTTP ${res.status}`));
  } catch (err) {
    // fetch says only 'fetch failed'; the reason (ECONNREFUSED, bad port, DNS) is in its cause.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message;
    return down(endpoint, why ? new Error(`${(err as Error).message} (${why})`) : err);
  }
}


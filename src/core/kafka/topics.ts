import type { Admin } from '../clients/rdkafka.js';
import type { Config } from '../config/types.js';
import { derivedNames } from '../config/names.js';
import { raiseMaxMessageBytes } from './topic-size.js';
import { backoffDelays } from '../backoff.js';
import { isBrokerUnreachable } from '../outages.js';
import { sleepUnlessAborted } from '../timeout.js';

/** Record key, headers (the DLQ's), and batch framing beyond the value. */
export const TOPIC_HEADROOM_BYTES = 1024 * 1024;

/**
 * The pipeline's topics, created if missing (through librdkafka, `admin` of clients/rdkafka.ts): changes and the DLQ with the configured
 * partitions; checkpoints compacted with one partition (only the latest record per key
 * matters, and one partition keeps them in order).
 */
export async function ensureTopics(admin: Admin, config: Config, signal?: AbortSignal): Promise<string[]> {
  // Kafka down at start: wait for it under kafka.retry (forever by default), as the clients
  // do; librdkafka's admin calls time out instead of retrying on their own. `signal` ends
  // the wait (a caller that has given up), with the last failure.
  const delays = backoffDelays(config.kafka.retry);
  for (let attempt = 1; ; attempt++) {
    try {
      return await ensureTopicsOnce(admin, config);
    } catch (err) {
      const retries = config.kafka.retry.retries === 'forever' ? Infinity : config.kafka.retry.retries;
      if (attempt > retries || !brokerAway(err)) throw err;
      await sleepUnlessAborted(delays(), signal ?? new AbortController().signal);
      if (signal?.aborted) throw err;
    }
  }
}

/** The broker not answering (gone, restarting, a call timed out), as opposed to a refusal. */
const brokerAway = (err: unknown): boolean => {
  const message = err instanceof Error ? err.message : String(err);
  return isBrokerUnreachable(message) || /Timed out|ERR__TIMED_OUT|ECONNREFUSED/i.test(message);
};

async function ensureTopicsOnce(admin: Admin, config: Config): Promise<string[]> {
  const names = derivedNames(config);
  // Topic-level max.message.bytes lets records up to kafka.maxRecordBytes (plus key, headers
  // and batch framing) in without touching the broker's message.max.bytes (1 MiB by default).
  const sized = [{ name: 'max.message.bytes', value: String(config.kafka.maxRecordBytes + TOPIC_HEADROOM_BYTES) }];
  const existing = new Set(await admin.listTopics());
  const wanted = [
    { topic: names.changesTopic, numPartitions: config.kafka.partitions, configEntries: sized },
    {
      topic: names.checkpointsTopic,
      numPartitions: 1,
      configEntries: [
        { name: 'cleanup.policy', value: 'compact' },
        { name: 'min.compaction.lag.ms', value: '60000' },
      ],
    },
    { topic: names.dlqTopic, numPartitions: config.kafka.partitions, configEntries: sized },
  ].filter((t) => !existing.has(t.topic));
  // Topics made under a lower limit are raised to this one (see topic-size.ts).
  await raiseMaxMessageBytes(config.kafka, [names.changesTopic, names.dlqTopic].filter((t) => existing.has(t)), config.kafka.maxRecordBytes + TOPIC_HEADROOM_BYTES);
  if (wanted.length === 0) return [];
  // librdkafka's CreateTopics takes each topic's configs; it has no waitForLeaders, and needs
  // none: producers and consumers wait for a leader through their own metadata retries.
  await admin.createTopics({
    topics: wanted.map((t) => ({ ...t, replicationFactor: config.kafka.replicationFactor })),
    timeout: 30_000,
  });
  return wanted.map((t) => t.topic);
}

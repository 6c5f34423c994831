import { Kafka, logLevel as KafkaLogLevel, type LogEntry } from 'kafkajs';
import type { KafkaConfig } from '../config/types.js';
import type { Logger } from '../logger.js';
import { isBrokerUnreachable, outageFailure } from '../outages.js';

export { isBrokerUnreachable };

/**
 * One place that builds kafkajs clients, so every client logs through our logger (kafkajs
 * prints to the console by default, which the engine must never do) and shares the
 * retry policy of the config.
 */
export function makeKafka(config: KafkaConfig, logger: Logger, overrides: { retries?: number; connectionTimeoutMs?: number; quiet?: boolean } = {}): Kafka {
  const log = logger.child('kafkajs');
  const retries = overrides.retries ?? (config.retry.retries === 'forever' ? Number.MAX_SAFE_INTEGER : config.retry.retries);
  return new Kafka({
    clientId: config.clientId,
    brokers: config.brokers,
    connectionTimeout: overrides.connectionTimeoutMs ?? 3000,
    requestTimeout: 30000,
    retry: { retries, initialRetryTime: config.retry.initialDelayMs, maxRetryTime: config.retry.maxDelayMs },
    logLevel: KafkaLogLevel.INFO,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...fields } = entry;
        // A probe expects connection errors and reports them itself; and kafkajs logs at
        // ERROR conditions it then retries as a matter of course: keep both at debug.
        if (overrides.quiet || isRoutineRetry(message, fields)) log.debug(message, fields);
        // The broker gone (a restart, a full disk): every retry says so; one line per outage (outages.ts).
        else if (level <= KafkaLogLevel.WARN && isBrokerUnreachable(message, fields)) {
          if (!outageFailure(log, 'kafka', fields['error'] ?? message, 'the kafka client')) log.debug(message, fields);
        }
        else if (level <= KafkaLogLevel.ERROR) log.error(message, fields);
        else if (level === KafkaLogLevel.WARN) log.warn(message, fields);
        else log.debug(message, fields);
      },
  });
}

/** Broker answers kafkajs logs as errors although they are a normal part of transactions and start-up, and are retried. */
const ROUTINE = /concurrent operation on the same transaction|coordinator is loading|Coordinator load in progress|Waiting for coordinator|coordinator is not available|Failed to find group coordinator|not the leader for that topic-partition|not the correct coordinator|There is no leader for this topic-partition/i;

export function isRoutineRetry(message: string, fields: Record<string, unknown>): boolean {
  return ROUTINE.test(message) || ROUTINE.test(String(fields['error'] ?? ''));
}

/**
 * Topic configuration values (DescribeConfigs). @confluentinc/kafka-javascript 1.10 has no
 * DescribeConfigs/AlterConfigs in either of its APIs (confluentinc/confluent-kafka-javascript#444),
 * so this, with kafka/topic-size.ts, is what still needs kafkajs.
 */
export async function describeTopicConfig(brokers: string[], topic: string, names: string[]): Promise<Record<string, string | undefined>> {
  const admin = new Kafka({ clientId: 'streamctl', brokers, logLevel: KafkaLogLevel.NOTHING, retry: { retries: 3 } }).admin();
  await admin.connect();
  try {
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: topic, configNames: names }] });
    const entries = described.resources[0]?.configEntries ?? [];
    return Object.fromEntries(names.map((n) => [n, entries.find((e) => e.configName === n)?.configValue]));
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

import kafkajs from 'kafkajs';
import type { KafkaConfig } from '../config/types.js';

/**
 * The one place kafkajs is still used: a topic's configuration (DescribeConfigs, AlterConfigs).
 *
 * Why: @confluentinc/kafka-javascript 1.10.1 (the newest release; librdkafka 2.15) exposes
 * neither call in either of its APIs, although librdkafka itself has them
 * (confluentinc/confluent-kafka-javascript#444, open). Everything else, data and admin, is
 * on librdkafka (./rdkafka.ts, ./librdkafka.ts). What needs them:
 *  - kafka/topic-size.ts raises `max.message.bytes` of topics made under a lower
 *    `kafka.maxRecordBytes` (new topics get theirs from librdkafka's CreateTopics);
 *  - delivery/sink-state.ts asks whether a changes topic it would rebuild a sink from is
 *    compacted (`cleanup.policy`); the partitions' low watermarks, read through librdkafka,
 *    answer whether retention deleted anything, but not whether compaction did.
 * What removes it: #444 landing (DescribeConfigs/IncrementalAlterConfigs in the binding).
 * Each call makes its own short-lived client: these run once at start or on a lost sink,
 * never on a timer.
 */

// kafkajs is CommonJS: its enums come through the default export.
const { Kafka, logLevel, ConfigResourceTypes, ConfigSource } = kafkajs;

/** A topic's configuration entry as the broker reports it. */
export interface TopicConfigEntry {
  name: string;
  value: string;
  /** Set on the topic itself (not a broker default or a synonym). */
  topicOverride: boolean;
  sensitive: boolean;
}

function configAdmin(config: Pick<KafkaConfig, 'brokers' | 'clientId'>): kafkajs.Admin {
  // Silent: a failure is returned to the caller, which reports it in its own words.
  return new Kafka({ clientId: config.clientId, brokers: config.brokers, logLevel: logLevel.NOTHING, retry: { retries: 3 } }).admin();
}

async function withAdmin<T>(config: Pick<KafkaConfig, 'brokers' | 'clientId'>, use: (admin: kafkajs.Admin) => Promise<T>): Promise<T> {
  const admin = configAdmin(config);
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Every configuration entry of each topic (DescribeConfigs), by topic name. */
export async function describeTopicConfigs(config: Pick<KafkaConfig, 'brokers' | 'clientId'>, topics: string[]): Promise<Map<string, TopicConfigEntry[]>> {
  if (topics.length === 0) return new Map();
  return withAdmin(config, async (admin) => {
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })) });
    return new Map(
      described.resources.map((r) => [
        r.resourceName,
        r.configEntries.map((e) => ({ name: e.configName, value: e.configValue, topicOverride: e.configSource === ConfigSource.TOPIC_CONFIG, sensitive: e.isSensitive })),
      ]),
    );
  });
}

/**
 * Replaces a topic's overrides with `entries` (AlterConfigs: the whole set, so the caller
 * sends back the overrides it keeps).
 */
export async function setTopicOverrides(config: Pick<KafkaConfig, 'brokers' | 'clientId'>, topic: string, entries: Array<{ name: string; value: string }>): Promise<void> {
  await withAdmin(config, (admin) =>
    admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: entries }] }).then(() => undefined),
  );
}

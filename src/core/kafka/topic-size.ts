import type { KafkaConfig } from '../config/types.js';

/**
 * Raises max.message.bytes of existing topics to at least `bytes` (never lowers it), so
 * raising kafka.maxRecordBytes takes effect on topics created under the old limit, with no
 * broker restart. AlterConfigs replaces a topic's whole set of overrides, so the topic's
 * other overrides are sent back unchanged with the new value. Through kafkajs, the one call
 * librdkafka's binding lacks (clients/kafka-configs.ts). Returns the topics changed.
 */
export async function raiseMaxMessageBytes(config: Pick<KafkaConfig, 'brokers' | 'clientId'>, topics: string[], bytes: number): Promise<string[]> {
  if (topics.length === 0) return [];
  // Loaded only when there is a topic to look at: kafkajs is 140-odd modules, 0.2-0.7 s of a
  // capturer's or backfill's start-up (it was loaded by every process that could create topics).
  const { describeTopicConfigs, setTopicOverrides } = await import('../clients/kafka-configs.js');
  const described = await describeTopicConfigs(config, topics);
  const changed: string[] = [];
  for (const [topic, entries] of described) {
    const current = Number(entries.find((e) => e.name === 'max.message.bytes')?.value ?? 0);
    if (current >= bytes) continue;
    const overrides = entries.filter((e) => e.topicOverride && e.name !== 'max.message.bytes' && !e.sensitive).map((e) => ({ name: e.name, value: e.value }));
    await setTopicOverrides(config, topic, [...overrides, { name: 'max.message.bytes', value: String(bytes) }]);
    changed.push(topic);
  }
  return changed;
}

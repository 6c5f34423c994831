import type { Admin } from 'kafkajs';
import type { Config } from '../config/types.js';
import { derivedNames } from '../config/names.js';

/**
 * The pipeline's topics, created if missing: changes and the DLQ with the configured
 * partitions; checkpoints compacted with one partition (only the latest record per key
 * matters, and one partition keeps them in order).
 */
export async function ensureTopics(admin: Admin, config: Config): Promise<string[]> {
  const names = derivedNames(config);
  const existing = new Set(await admin.listTopics());
  const wanted = [
    { topic: names.changesTopic, numPartitions: config.kafka.partitions, configEntries: [] as Array<{ name: string; value: string }> },
    {
      topic: names.checkpointsTopic,
      numPartitions: 1,
      configEntries: [
        { name: 'cleanup.policy', value: 'compact' },
        { name: 'min.compaction.lag.ms', value: '60000' },
      ],
    },
    { topic: names.dlqTopic, numPartitions: config.kafka.partitions, configEntries: [] },
  ].filter((t) => !existing.has(t.topic));
  if (wanted.length === 0) return [];
  await admin.createTopics({
    topics: wanted.map((t) => ({ ...t, replicationFactor: config.kafka.replicationFactor })),
    waitForLeaders: true,
  });
  return wanted.map((t) => t.topic);
}

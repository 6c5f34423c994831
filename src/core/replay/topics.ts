import type { Admin } from '../clients/rdkafka.js';
import { derivedNames } from '../config/names.js';
import type { Config } from '../config/types.js';
import { resolutionTopic } from './resolutions.js';

/**
 * `<prefix>.dlq-resolved`, created if missing: compacted (only the latest resolution of a
 * letter matters), one partition (a small topic, read whole by every run).
 */
export async function ensureResolutionTopic(admin: Admin, config: Config): Promise<void> {
  const topic = resolutionTopic(derivedNames(config).dlqTopic);
  if ((await admin.listTopics()).includes(topic)) return;
  await admin
    .createTopics({
      topics: [
        {
          topic,
          numPartitions: 1,
          replicationFactor: config.kafka.replicationFactor,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'min.compaction.lag.ms', value: '60000' },
          ],
        },
      ],
    })
    .catch((err: Error) => {
      if (!/already exists/i.test(err.message)) throw err;
    });
}

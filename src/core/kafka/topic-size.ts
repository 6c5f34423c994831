import kafkajs, { type Admin } from 'kafkajs';

// kafkajs is CommonJS: its enums come through the default export.
const { ConfigResourceTypes, ConfigSource } = kafkajs;

/**
 * Raises max.message.bytes of existing topics to at least `bytes` (never lowers it), so
 * raising kafka.maxRecordBytes takes effect on topics created under the old limit, with no
 * broker restart. AlterConfigs (the API kafkajs offers) replaces a topic's whole set of
 * overrides, so the topic's other overrides are sent back unchanged with the new value.
 * Returns the topics changed.
 */
export async function raiseMaxMessageBytes(admin: Admin, topics: string[], bytes: number): Promise<string[]> {
  if (topics.length === 0) return [];
  const described = await admin.describeConfigs({
    resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
    includeSynonyms: false,
  });
  const changed: string[] = [];
  for (const resource of described.resources) {
    const entries = resource.configEntries;
    const current = Number(entries.find((e) => e.configName === 'max.message.bytes')?.configValue ?? 0);
    if (current >= bytes) continue;
    const overrides = entries
      .filter((e) => e.configSource === ConfigSource.TOPIC_CONFIG && e.configName !== 'max.message.bytes' && !e.isSensitive)
      .map((e) => ({ name: e.configName, value: e.configValue }));
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: resource.resourceName, configEntries: [...overrides, { name: 'max.message.bytes', value: String(bytes) }] }],
    });
    changed.push(resource.resourceName);
  }
  return changed;
}

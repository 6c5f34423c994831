import type { Config } from './types.js';

/** Names derived from the pipeline id, so two pipelines on one cluster never share state. */
export interface DerivedNames {
  slot: string;
  publication: string;
  changesTopic: string;
  checkpointsTopic: string;
  dlqTopic: string;
  transactionalId: string;
  consumerGroup: (sink: string) => string;
}

export function derivedNames(config: Config): DerivedNames {
  const id = config.pipeline.id;
  const prefix = config.pipeline.topicPrefix;
  return {
    slot: config.postgres.slot || `streamctl_${id}`,
    publication: config.postgres.publication || `streamctl_${id}`,
    changesTopic: `${prefix}.changes`,
    checkpointsTopic: `${prefix}.checkpoints`,
    dlqTopic: `${prefix}.dlq`,
    transactionalId: `streamctl-capture-${id}`,
    consumerGroup: (sink) => `streamctl-${id}-sink-${sink}`,
  };
}

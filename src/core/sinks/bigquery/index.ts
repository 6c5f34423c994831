import type { SinkPlugin } from '../plugin.js';
import { BIGQUERY_SCHEMA, bigQueryDefaults, bigQueryEndpoint, bigQueryProblems, type BigQuerySinkConfig } from './config.js';

export const bigQueryPlugin: SinkPlugin<'bigquery', BigQuerySinkConfig> = {
  name: 'bigquery',
  schema: BIGQUERY_SCHEMA,
  defaults: bigQueryDefaults,
  fileSettings: ['credentialsFile'],
  secretSettings: ['credentialsJson'],
  problems: bigQueryProblems,
  endpoint: bigQueryEndpoint,
  // Loaded when used (./plugin.ts says why).
  check: async (config) => (await import('./health.js')).checkBigQuery(config),
  build: async (config, { logger, pipelineId }) => new (await import('./sink.js')).BigQuerySink(config, logger, pipelineId),
};

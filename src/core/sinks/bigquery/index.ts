import type { SinkPlugin } from '../plugin.js';
import { BIGQUERY_SCHEMA, bigQueryDefaults, bigQueryProblems, type BigQuerySinkConfig } from './config.js';
import { bigQueryEndpoint, checkBigQuery } from './health.js';
import { BigQuerySink } from './sink.js';

export const bigQueryPlugin: SinkPlugin<'bigquery', BigQuerySinkConfig> = {
  name: 'bigquery',
  schema: BIGQUERY_SCHEMA,
  defaults: bigQueryDefaults,
  fileSettings: ['credentialsFile'],
  secretSettings: ['credentialsJson'],
  problems: bigQueryProblems,
  endpoint: bigQueryEndpoint,
  check: checkBigQuery,
  build: (config, { logger, pipelineId }) => new BigQuerySink(config, logger, pipelineId),
};

import { secretOf } from '../../secret-file.js';
import type { SinkPlugin } from '../plugin.js';
import { HTTP_SCHEMA, httpDefaults, httpProblems, type HttpSinkConfig } from './config.js';
import { checkHttp, httpEndpoint } from './health.js';

export const httpPlugin: SinkPlugin<'http', HttpSinkConfig> = {
  name: 'http',
  schema: HTTP_SCHEMA,
  defaults: httpDefaults,
  fileSettings: ['hmacKeyFile'],
  secretSettings: ['hmacKey'],
  problems: httpProblems,
  fileSecrets: (config) => [secretOf(config.hmacKey, config.hmacKeyFile)].filter(Boolean),
  endpoint: httpEndpoint,
  check: checkHttp,
  // Loaded when used (./plugin.ts says why).
  build: async (config, { logger }) => new (await import('./sink.js')).HttpSink(config, secretOf(config.hmacKey, config.hmacKeyFile), logger, { concurrency: config.concurrency }),
};

import { secretOf } from '../../secret-file.js';
import type { SinkPlugin } from '../plugin.js';
import { HTTP_SCHEMA, httpDefaults, httpProblems, type HttpSinkConfig } from './config.js';
import { checkHttp, httpEndpoint } from './health.js';
import { HttpSink } from './sink.js';

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
  build: (config, { logger }) => new HttpSink(config, secretOf(config.hmacKey, config.hmacKeyFile), logger),
};

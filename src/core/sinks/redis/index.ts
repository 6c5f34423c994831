import type { SinkPlugin } from '../plugin.js';
import { REDIS_SCHEMA, redisDefaults, type RedisSinkConfig } from './config.js';
import { checkRedis, redisEndpoint } from './health.js';
import { RedisSink } from './sink.js';

export const redisPlugin: SinkPlugin<'redis', RedisSinkConfig> = {
  name: 'redis',
  schema: REDIS_SCHEMA,
  defaults: redisDefaults,
  secretSettings: ['password'],
  endpoint: redisEndpoint,
  check: checkRedis,
  build: (config, { logger }) => new RedisSink(config, logger),
};

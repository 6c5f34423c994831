import type { SinkPlugin } from '../plugin.js';
import { REDIS_SCHEMA, redisDefaults, redisEndpoint, type RedisSinkConfig } from './config.js';

export const redisPlugin: SinkPlugin<'redis', RedisSinkConfig> = {
  name: 'redis',
  schema: REDIS_SCHEMA,
  defaults: redisDefaults,
  secretSettings: ['password'],
  endpoint: redisEndpoint,
  // Loaded when used (./plugin.ts says why).
  check: async (config, options) => (await import('./health.js')).checkRedis(config, options),
  build: async (config, { logger }) => new (await import('./sink.js')).RedisSink(config, logger),
};

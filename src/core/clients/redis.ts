import { Redis } from 'ioredis';
import type { RedisSinkConfig } from '../config/types.js';
import type { Logger } from '../logger.js';

/** An ioredis client that reports errors through our logger instead of the console. */
export function makeRedis(config: RedisSinkConfig, logger: Logger, options: { failFast?: boolean } = {}): Redis {
  const client = new Redis({
    host: config.host,
    port: config.port,
    db: config.db,
    ...(config.password ? { password: config.password } : {}),
    lazyConnect: true,
    connectTimeout: 3000,
    ...(options.failFast ? { maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false } : {}),
  });
  client.on('error', (err: Error) => logger.debug('redis client error', { error: err.message }));
  return client;
}

import { Redis } from 'ioredis';
import type { RedisSinkConfig } from '../config/types.js';
import type { Logger } from '../logger.js';

/** An ioredis client that reports errors through our logger instead of the console. */
/**
 * failFast: one attempt, no reconnect (status probes). sink: fail a command at once while
 * disconnected (ioredis would otherwise queue it until Redis is back, hiding the outage
 * from the retry and breaker policies) and reconnect in the background.
 */
export function makeRedis(config: RedisSinkConfig, logger: Logger, options: { failFast?: boolean; sink?: boolean } = {}): Redis {
  const client = new Redis({
    host: config.host,
    port: config.port,
    db: config.db,
    ...(config.password ? { password: config.password } : {}),
    lazyConnect: true,
    connectTimeout: 3000,
    ...(options.failFast ? { maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false } : {}),
    ...(options.sink
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 10_000, retryStrategy: (times: number) => Math.min(times * 100, 2000) }
      : {}),
  });
  client.on('error', (err: Error) => logger.debug('redis client error', { error: err.message }));
  return client;
}

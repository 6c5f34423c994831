import { makeRedis } from '../../clients/redis.js';
import { timed } from '../../timed.js';
import type { Logger } from '../../logger.js';
import type { SinkHealth } from '../plugin.js';
import type { RedisSinkConfig } from './config.js';

/** PING with one attempt and no reconnect, and the server's version. */
export async function checkRedis(config: RedisSinkConfig, { logger }: { logger: Logger }): Promise<SinkHealth> {
  const redis = makeRedis(config, logger, { failFast: true });
  // ioredis rejects connect() with a bare 'Connection is closed.'; the cause is in the error event.
  let cause: Error | undefined;
  redis.on('error', (err: Error) => {
    cause = err;
  });
  try {
    await redis.connect().catch((err: Error) => {
      throw cause ?? err;
    });
    const { ms } = await timed(() => redis.ping());
    const info = await redis.info('server');
    const version = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
    return { rtt_ms: ms, detail: { version } };
  } finally {
    redis.disconnect();
  }
}

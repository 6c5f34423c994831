import { after, before } from 'node:test';
import type { Redis } from 'ioredis';
import { makeRedis } from '../../src/core/clients/redis.js';
import { silentLogger } from '../../src/core/logger.js';
import { RedisSink } from '../../src/core/sinks/redis/sink.js';
import type { Config } from '../../src/core/config/index.js';
import { stackConfig, unique } from './stack.js';

/**
 * A RedisSink on the stack's Redis under a key prefix of its own, plus a plain client to
 * look at what it wrote; registers the describe block's before/after hooks (start, then
 * delete every key under the prefix and stop).
 */
export interface RedisSinkFixture {
  prefix: string;
  config: Config['sinks']['redis'];
  sink: RedisSink;
  /** Connected in before(). */
  redis: Redis;
}

export function redisSinkFixture(tag: string): RedisSinkFixture {
  const prefix = `${unique(tag)}:`;
  const config = { ...stackConfig().sinks.redis, keyPrefix: prefix };
  const fx = { prefix, config, sink: new RedisSink(config, silentLogger) } as RedisSinkFixture;
  before(async () => {
    await fx.sink.start();
    fx.redis = makeRedis(config, silentLogger);
    await fx.redis.connect();
  });
  after(async () => {
    if (fx.redis) {
      const keys = await fx.redis.keys(`${prefix}*`);
      if (keys.length > 0) await fx.redis.del(...keys);
      await fx.redis.quit();
    }
    await fx.sink.stop();
  });
  return fx;
}

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { makeRedis } from '../../src/core/clients/redis.js';
import { silentLogger } from '../../src/core/logger.js';
import { stackConfig, unique } from '../helpers/stack.js';

// The shape the Redis sink relies on: a value and its version written together only when
// the version is newer, in one atomic script.
const SET_IF_NEWER = `
local current = redis.call('HGET', KEYS[1], 'v')
if current and current >= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'row', ARGV[2])
return 1`;

describe('Redis of the local stack', () => {
  let redis: Redis;
  before(async () => {
    redis = makeRedis(stackConfig().sinks.redis, silentLogger);
    await redis.connect();
  });
  after(() => redis.quit());

  it('runs a Lua script atomically: a newer version writes, an older one is refused', async () => {
    const key = unique('row');
    assert.equal(await redis.eval(SET_IF_NEWER, 1, key, '0002', '{"n":2}'), 1);
    assert.equal(await redis.eval(SET_IF_NEWER, 1, key, '0001', '{"n":1}'), 0);
    assert.deepEqual(await redis.hgetall(key), { v: '0002', row: '{"n":2}' });
    await redis.del(key);
  });
});

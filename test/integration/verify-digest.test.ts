import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { makeRedis } from '../../src/core/clients/redis.js';
import { silentLogger } from '../../src/core/logger.js';
import { lanesEqual, lanesHex, newLanes, rowDigest, storedFields, xorInto } from '../../src/core/verify/digest.js';
import { RedisSide } from '../../src/core/verify/redis-side.js';
import { stackConfig, unique } from '../helpers/stack.js';

describe('verify digest: Redis (Lua) and Node agree', () => {
  const prefix = `${unique('vfd')}:`;
  const config = { ...stackConfig().sinks.redis, keyPrefix: prefix };
  const T = 'public.t';
  let redis: Redis;
  let side: RedisSide;

  before(async () => {
    redis = makeRedis(config, silentLogger);
    await redis.connect();
    side = await RedisSide.connect(config, silentLogger);
  });

  after(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await side.close();
  });

  it('on awkward values (unicode, quotes, newlines, NUL escapes, big digits, nulls, arrays), with the stamp left out on both sides', async () => {
    const rows = [
      { id: 1, name: 'Zoë "quoted" \\ back\nslash', emoji: '🦀 ok', n: '12345678901234567890', v: null },
      { id: 2, name: 'nul \u0000 inside', tags: ['a', null, 'ü'], f: -0.5, _streamctl: { processed_at: '2026-01-01T00:00:00Z', pipeline: 'x' } },
      { id: 3, doc: '{"a": [1, 2]}', b: true },
    ];
    const want = newLanes();
    const keys: string[] = [];
    for (const row of rows) {
      const k = JSON.stringify({ id: row.id });
      keys.push(k);
      const args = Object.entries(row).flatMap(([c, v]) => [c, JSON.stringify(v ?? null)]);
      await redis.hset(`${prefix}row:${T}:${k}`, ...args);
      xorInto(want, rowDigest(k, storedFields(row)));
    }
    const got = await side.chunkDigest(T, [...keys, '{"id":404}']);
    assert.equal(got.present, 3);
    assert.ok(lanesEqual(got.lanes, want), `${lanesHex(got.lanes)} != ${lanesHex(want)}`);
    // And one changed byte anywhere changes it.
    await redis.hset(`${prefix}row:${T}:${keys[0]!}`, 'emoji', JSON.stringify('🦀 ok!'));
    assert.ok(!lanesEqual((await side.chunkDigest(T, keys)).lanes, want));
  });
});

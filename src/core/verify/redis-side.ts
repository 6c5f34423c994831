import type { Redis } from 'ioredis';
import { makeRedis } from '../clients/redis.js';
import type { RedisSinkConfig } from '../config/types.js';
import { STAMP_FIELD } from '../delivery/enrich.js';
import type { Logger } from '../logger.js';
import { bucketsOf, keysIn, type KeyBuckets, type Lanes } from './digest.js';
import type { SinkRow, SinkSide } from './sink-side.js';

/**
 * The chunk digest of digest.ts, inside Redis: for each key of the chunk, the row's hash
 * is read where it lies and only five integers come back, so verify moves no row data out
 * of Redis for a chunk that is equal. `bit` (LuaBitOp) works on 32-bit lanes; XOR needs no
 * field order, which Lua could not give the way Node sorts (see digest.ts).
 * ARGV: prefix, schema.table, stamp field, K*. Returns present, lane0..3, bytes read.
 */
export const CHUNK_DIGEST_LUA = `
local prefix, t, stamp = ARGV[1], ARGV[2], ARGV[3]
local a1, a2, a3, a4 = 0, 0, 0, 0
local present, bytes = 0, 0
for i = 4, #ARGV do
  local k = ARGV[i]
  local fields = redis.call('HGETALL', prefix .. 'row:' .. t .. ':' .. k)
  if #fields > 0 then
    present = present + 1
    for j = 1, #fields, 2 do
      local name, v = fields[j], fields[j + 1]
      if name ~= stamp then
        bytes = bytes + #name + #v
        local h = redis.sha1hex(k .. '\\0' .. name .. '\\0' .. v)
        a1 = bit.bxor(a1, tonumber(string.sub(h, 1, 8), 16))
        a2 = bit.bxor(a2, tonumber(string.sub(h, 9, 16), 16))
        a3 = bit.bxor(a3, tonumber(string.sub(h, 17, 24), 16))
        a4 = bit.bxor(a4, tonumber(string.sub(h, 25, 32), 16))
      end
    end
  end
end
return {present, a1, a2, a3, a4, bytes}
`;

/** Keys per script call: a call blocks Redis, so the sink's own writes wait at most one such slice. */
const KEYS_PER_CALL = 1000;

type RedisWithDigest = Redis & { streamctlVerifyDigest(...args: string[]): Promise<number[]> };

export class RedisSide implements SinkSide {
  readonly name = 'redis' as const;
  bytesRead = 0;
  private constructor(
    private readonly client: RedisWithDigest,
    private readonly prefix: string,
  ) {}

  /** For the catch-up barrier, which reads the offsets Redis stores beside the rows. */
  get redisClient(): Redis {
    return this.client;
  }

  static async connect(config: RedisSinkConfig, logger: Logger): Promise<RedisSide> {
    const client = makeRedis(config, logger) as RedisWithDigest;
    client.defineCommand('streamctlVerifyDigest', { numberOfKeys: 0, lua: CHUNK_DIGEST_LUA });
    try {
      await client.connect();
    } catch (err) {
      client.disconnect(); // else it keeps reconnecting in the background and the process never ends
      throw new Error(`Redis at ${config.host}:${config.port}: ${(err as Error).message}`);
    }
    return new RedisSide(client, config.keyPrefix);
  }

  async chunkDigest(table: string, keys: readonly string[]): Promise<{ present: number; lanes: Lanes }> {
    const lanes = new Uint32Array(4);
    let present = 0;
    for (let from = 0; from < keys.length; from += KEYS_PER_CALL) {
      const r = await this.client.streamctlVerifyDigest(this.prefix, table, STAMP_FIELD, ...keys.slice(from, from + KEYS_PER_CALL));
      present += r[0]!;
      for (let i = 0; i < 4; i++) lanes[i] = (lanes[i]! ^ (r[i + 1]! >>> 0)) >>> 0;
      this.bytesRead += r[5]!;
    }
    return { present, lanes };
  }

  async fetchRows(table: string, keys: readonly string[]): Promise<Map<string, SinkRow>> {
    const out = new Map<string, SinkRow>();
    for (let from = 0; from < keys.length; from += KEYS_PER_CALL) {
      const slice = keys.slice(from, from + KEYS_PER_CALL);
      const pipe = this.client.pipeline();
      for (const k of slice) pipe.hgetall(`${this.prefix}row:${table}:${k}`);
      pipe.hmget(`${this.prefix}ver:${table}`, ...slice);
      const results = (await pipe.exec()) ?? [];
      const versions = (results[slice.length]?.[1] ?? []) as Array<string | null>;
      slice.forEach((k, i) => {
        const hash = (results[i]?.[1] ?? {}) as Record<string, string>;
        const names = Object.keys(hash).filter((n) => n !== STAMP_FIELD);
        const fields = Object.keys(hash).length === 0 ? null : new Map(names.map((n) => [n, hash[n]!] as [string, string]));
        for (const n of names) this.bytesRead += n.length + hash[n]!.length;
        out.set(k, { fields, version: versions[i] ?? null });
      });
    }
    return out;
  }

  /** Keys from the table's key set (`<prefix>keys:T`, the set the sink keeps for truncates), by SSCAN. */
  private async scanKeys(table: string, each: (key: string) => void): Promise<void> {
    const setKey = `${this.prefix}keys:${table}`;
    const rowPrefix = `${this.prefix}row:${table}:`;
    let cursor = '0';
    do {
      const [next, members] = await this.client.sscan(setKey, cursor, 'COUNT', 2000);
      cursor = next;
      for (const m of members) {
        this.bytesRead += m.length;
        if (m.startsWith(rowPrefix)) each(m.slice(rowPrefix.length));
      }
    } while (cursor !== '0');
  }

  async keyBuckets(table: string): Promise<KeyBuckets> {
    return bucketsOf((each) => this.scanKeys(table, each));
  }

  async keysInBuckets(table: string, buckets: ReadonlySet<number>): Promise<string[]> {
    const out = await keysIn((each) => this.scanKeys(table, each), buckets);
    // A key left in the set whose hash is gone is not a row the sink holds.
    const exists = await Promise.all(out.map((k) => this.client.exists(`${this.prefix}row:${table}:${k}`)));
    return out.filter((_, i) => exists[i] === 1);
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => {});
    this.client.disconnect();
  }
}

import type { Redis } from 'ioredis';
import { makeRedis } from '../../clients/redis.js';
import type { RedisSinkConfig } from '../../config/types.js';
import { canonicalJson } from '../../event/identity.js';
import type { ChangeEvent } from '../../event/envelope.js';
import type { Logger } from '../../logger.js';
import { SINK_STATE_LOST, type OffsetsToStore, type Sink, type SinkRecord, type WriteResult } from '../contract.js';
import { eventVersion } from '../../event/version.js';
import { APPLY_BATCH_LUA } from './script.js';

/** How ioredis says it has no connection (server down or restarting), as opposed to a command that failed. */
const UNREACHABLE = /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|Command timed out|LOADING/;

type RedisWithScript = Redis & { streamctlApply(...args: string[]): Promise<number[]> };

/** ARGV for APPLY_BATCH_LUA (pure, so the encoding is tested on its own). */
export function scriptArgs(prefix: string, offsets: OffsetsToStore | undefined, events: ChangeEvent[]): string[] {
  const args: string[] = [prefix, offsets?.group ?? '-', offsets?.generation ?? '-'];
  const entries = Object.entries(offsets?.next ?? {});
  args.push(String(entries.length));
  for (const [tp, off] of entries) args.push(tp, off);
  for (const e of events) {
    const table = `${e.schema}.${e.table}`;
    const version = eventVersion(e);
    if (e.op === 'truncate') {
      args.push('t', table, version);
    } else if (e.op === 'delete') {
      if (e.moved_to) args.push('m', table, canonicalJson(e.key), version, canonicalJson(e.moved_to));
      else args.push('d', table, canonicalJson(e.key), version);
    } else {
      const columns = Object.entries(e.after ?? {});
      if (e.moved_from) {
        // The old key's delete is the change just before this one (see the assembler).
        const movedAt = eventVersion({ ...e, op: 'delete', position: Math.max(0, (e.position ?? 0) - 1) });
        args.push('U', table, canonicalJson(e.key), version, canonicalJson(e.moved_from), movedAt, String(columns.length));
      } else args.push('u', table, canonicalJson(e.key), version, String(columns.length));
      for (const [name, value] of columns) args.push(name, JSON.stringify(value ?? null));
      const keep = e.unchanged ?? [];
      args.push(String(keep.length), ...keep);
    }
  }
  return args;
}

/**
 * The read model: one Redis hash per row. Values, versions and the consumed offsets are
 * written by one Lua script, so a crash leaves either all of a batch or none of it, and
 * the consumer resumes from the offsets stored beside the data.
 */
export class RedisSink implements Sink {
  readonly name = 'redis' as const;
  readonly storesOffsets = true;
  private client: RedisWithScript | null = null;

  constructor(
    private readonly config: RedisSinkConfig,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    const client = makeRedis(this.config, this.logger, { sink: true }) as RedisWithScript;
    client.defineCommand('streamctlApply', { numberOfKeys: 0, lua: APPLY_BATCH_LUA });
    // ioredis rejects connect() with a bare 'Connection is closed.'; the cause is in the error event.
    let cause: Error | undefined;
    const onError = (err: Error) => (cause = err);
    client.on('error', onError);
    try {
      await client.connect();
    } catch (err) {
      client.disconnect(); // else it keeps reconnecting in the background
      throw cause ?? err;
    } finally {
      client.off('error', onError);
    }
    this.client = client;
  }

  async write(records: SinkRecord[], offsets?: OffsetsToStore): Promise<WriteResult[]> {
    const client = this.client;
    if (!client) throw new Error('redis sink not started');
    try {
      await client.streamctlApply(...scriptArgs(this.config.keyPrefix, offsets, records.map((r) => r.event)));
      // An older change ignored by the version check is delivered too: the row is already newer.
      return records.map(() => ({ ok: true }));
    } catch (err) {
      const message = (err as Error).message;
      const errorClass = message.includes('STREAMCTL_STATE_LOST') ? SINK_STATE_LOST : UNREACHABLE.test(message) ? 'redis_unreachable' : 'redis_error';
      return records.map(() => ({ ok: false, permanent: false, errorClass, message }));
    }
  }

  async storedOffsets(group: string): Promise<Record<string, string>> {
    if (!this.client) throw new Error('redis sink not started');
    return this.client.hgetall(`${this.config.keyPrefix}offsets:${group}`);
  }

  async stateMarkers(group: string): Promise<Record<string, string>> {
    if (!this.client) throw new Error('redis sink not started');
    return this.client.hgetall(`${this.config.keyPrefix}gen:${group}`);
  }

  async markState(group: string, markers: Record<string, string>): Promise<void> {
    if (!this.client) throw new Error('redis sink not started');
    if (Object.keys(markers).length > 0) await this.client.hset(`${this.config.keyPrefix}gen:${group}`, markers);
  }

  async healthCheck(): Promise<void> {
    await this.client?.ping();
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = null;
    if (!client) return;
    if (client.status === 'ready') await client.quit().catch(() => {});
    client.disconnect();
  }
}

/** Reads one row of the read model back as a plain object (for tests, status and users). */
export async function readRow(client: Redis, prefix: string, schemaTable: string, key: Record<string, unknown>): Promise<Record<string, unknown> | null> {
  const fields = await client.hgetall(`${prefix}row:${schemaTable}:${canonicalJson(key)}`);
  if (Object.keys(fields).length === 0) return null;
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, JSON.parse(v) as unknown]));
}

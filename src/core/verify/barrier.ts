import { endOffsets, type Admin } from '../clients/rdkafka.js';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { derivedNames } from '../config/names.js';
import type { Config } from '../config/types.js';
import { compareLsn } from '../event/lsn.js';
import { sleep } from '../timeout.js';
import type { VerifySinkName } from './sink-side.js';

/**
 * "The sink has caught up past C": every change committed before C is applied in the
 * sink. Verify waits for this before it calls a row different, so a busy table gives no
 * false alarm. Two steps, each on the pipeline's own bookkeeping:
 *
 * 1. capture has put every change before C in Kafka: the slot's confirmed_flush_lsn is
 *    at or past C (capture confirms a position only after the Kafka commit covering it,
 *    and confirms idle keepalive positions too, so an idle pipeline still gets there);
 * 2. the sink has consumed the changes topic up to the end offsets taken after step 1:
 *    its consumer group's committed offsets (Redis keeps the exact ones beside its data
 *    and the group's are at most as far; both are read, the larger wins).
 *
 * Returns false when that was not reached in time (no `stream` running, a stuck sink):
 * differences are then reported as unconfirmed rather than waited for forever.
 */
export async function waitSinkPast(
  lsn: string,
  sink: VerifySinkName,
  deps: { config: Config; pg: pg.Client; admin: Admin; redis: Redis | null },
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const names = derivedNames(deps.config);
  const deadline = Date.now() + timeoutMs;
  const expired = () => Date.now() > deadline || signal?.aborted === true;
  for (;;) {
    const { rows } = await deps.pg.query<{ lsn: string | null }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [names.slot]);
    const confirmed = rows[0]?.lsn ?? null;
    if (confirmed === null) return false; // no capture slot: nothing will ever carry the changes
    if (compareLsn(confirmed, lsn) >= 0) break;
    if (expired()) return false;
    await sleep(250);
  }
  const ends = await endOffsets(deps.admin, names.changesTopic);
  const group = names.consumerGroup(sink);
  for (;;) {
    const done = new Map<number, bigint>();
    const committed = await deps.admin.fetchOffsets({ groupId: group, topics: [names.changesTopic] });
    for (const p of committed[0]?.partitions ?? []) done.set(p.partition, BigInt(p.offset));
    if (sink === 'redis' && deps.redis) {
      const stored = await deps.redis.hgetall(`${deps.config.sinks.redis.keyPrefix}offsets:${group}`);
      for (const [tp, off] of Object.entries(stored)) {
        const [topic, partition] = [tp.slice(0, tp.lastIndexOf(':')), Number(tp.slice(tp.lastIndexOf(':') + 1))];
        if (topic !== names.changesTopic) continue;
        const v = BigInt(off);
        if (v > (done.get(partition) ?? -1n)) done.set(partition, v);
      }
    }
    const behind = ends.some((e) => BigInt(e.high) > BigInt(e.low) && (done.get(e.partition) ?? -1n) < BigInt(e.high));
    if (!behind) return true;
    if (expired()) return false;
    await sleep(250);
  }
}

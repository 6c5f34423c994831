import type { BigQuery } from '@google-cloud/bigquery';
import type { Redis } from 'ioredis';
import type { SinkName } from '../sinks/contract.js';
import { canonicalJson } from '../event/identity.js';
import type { HttpReceiver } from '../../receiver/server.js';
import { LatencyRecorder } from './latency.js';
import type { Ledger } from './ledger.js';

/**
 * How each sink is watched from its own side: latency (sink acknowledgement - intended send
 * time) and, after the drain, the events counted in the sink's effective view. One small
 * interface so a different counter (the `verify` command's comparison, say) can replace
 * one of these later.
 */
export interface SinkCounts {
  /** How the counts were taken. */
  method: string;
  /** What `expected`, `lost`, ... count: events, or rows for a read model that keeps one version per row. */
  unit: 'events' | 'rows';
  expected: number;
  /** Expected but not in the sink's effective view. */
  lost: number;
  /** In the effective view more than once; absent where the view cannot show a duplicate. */
  duplicates?: number;
  /** A row's events seen in an order other than their commit order; absent where not observable. */
  out_of_order?: number;
  /** In the sink but not written by this run's load (or older/newer than the load left it). */
  unexpected: number;
  /** Of `lost`, rows still present that should be gone (deleted, or moved to a new key by a primary-key change). */
  lingering?: number;
  /** Extra physical copies the effective view collapsed (BigQuery: re-inserted rows). */
  copies_collapsed?: number;
}

export interface SinkObserver {
  readonly sink: SinkName;
  readonly latency: LatencyRecorder;
  /** Events the sink has shown so far, for the timeline; null when not watched during the run. */
  seen(): number | null;
  /** After the drain: the sink's effective view against what the load committed. */
  count(): Promise<SinkCounts>;
  stop(): Promise<void>;
}

export interface MeasuredWindow {
  from: number;
  until: number;
}

/** Reads an event's ev (its row's `ev` column) and row id from an envelope-like object. */
function evAndId(ledger: Ledger, op: string, key: unknown, after: unknown): { ev: number | undefined; id: number | undefined } {
  const id = toNumber((key as Record<string, unknown> | null)?.['id']);
  const afterEv = toNumber((after as Record<string, unknown> | null)?.['ev']);
  return { ev: ledger.evOf(op, afterEv, id), id };
}

const toNumber = (v: unknown): number | undefined => (typeof v === 'number' || (typeof v === 'string' && v !== '') ? Number(v) : undefined);

/** Per-event counts, shared by the sinks that show every event (HTTP, BigQuery). */
class EventTally {
  private readonly seenCount: Uint8Array;
  private readonly lastEvOfRow: Float64Array;
  distinct = 0;
  duplicates = 0;
  outOfOrder = 0;
  unexpected = 0;

  constructor(private readonly ledger: Ledger) {
    this.seenCount = new Uint8Array(ledger.capacity + 1);
    this.lastEvOfRow = new Float64Array(ledger.capacity + 1);
  }

  /** Counts one event; returns its ev when it is one of the load's. */
  add(op: string, key: unknown, after: unknown): number | undefined {
    const { ev, id } = evAndId(this.ledger, op, key, after);
    if (ev === undefined || id === undefined || !(ev > 0 && ev <= this.ledger.capacity) || !this.ledger.isKnown(ev)) {
      this.unexpected++;
      return undefined;
    }
    const seen = this.seenCount[ev]!;
    if (seen === 0) this.distinct++;
    else this.duplicates++;
    if (seen < 255) this.seenCount[ev] = seen + 1;
    const row = id - this.ledger.firstId;
    if (row >= 0 && row < this.lastEvOfRow.length) {
      if (ev < this.lastEvOfRow[row]!) this.outOfOrder++;
      else this.lastEvOfRow[row] = ev;
    }
    return ev;
  }

  counts(method: string): SinkCounts {
    const expected = this.ledger.committedEvents;
    return { method, unit: 'events', expected, lost: expected - this.distinct, duplicates: this.duplicates, out_of_order: this.outOfOrder, unexpected: this.unexpected };
  }
}

/** HTTP: the command's own receiver (signatures verified, Idempotency-Key replays answered, not processed). */
export class HttpObserver implements SinkObserver {
  readonly sink = 'http' as const;
  readonly latency = new LatencyRecorder('exact: receiver arrival (its clock) - intended send time, every event');
  private readonly tally: EventTally;

  constructor(
    private readonly receiver: HttpReceiver,
    private readonly ledger: Ledger,
    private readonly window: () => MeasuredWindow,
  ) {
    this.tally = new EventTally(ledger);
  }

  /** The receiver's onAccepted: one request, one event or a batch. */
  accepted(body: unknown): void {
    const now = Date.now();
    const { from, until } = this.window();
    for (const e of Array.isArray(body) ? body : [body]) {
      const event = e as { op?: string; key?: unknown; after?: unknown };
      const ev = this.tally.add(String(event.op), event.key, event.after);
      if (ev === undefined) continue;
      const intended = this.ledger.intendedAt(ev);
      if (intended >= from && intended < until) this.latency.record(now - intended);
    }
  }

  seen(): number {
    return this.tally.distinct;
  }

  async count(): Promise<SinkCounts> {
    return this.tally.counts('receiver: event ids processed (each under its Idempotency-Key; replays of a key are answered, not processed)');
  }

  async stop(): Promise<void> {
    await this.receiver.close();
  }
}

/**
 * How long a Redis latency sample waits before its next poll: the poll interval while the
 * sample is young, then a fixed share of its age. Polling every sample every 10 ms cost
 * more the further the pipeline fell behind (3 s behind at 100 transactions a second: 30,000
 * HGETs a second, by arithmetic, on the same 2 cores as the pipeline it measures; Redis took a
 * fifth of a core in a run 13 s behind); with the share, a sample costs about 20 polls to reach
 * 200 ms and 20 more each time its age grows by e (2.7x), and its error stays within
 * max(pollMs, share x latency): 10 ms under 200 ms, 150 ms at 3 s.
 */
export function redisPollDelay(ageMs: number, pollMs: number, share = REDIS_POLL_SHARE): number {
  return Math.max(pollMs, Math.floor(ageMs * share));
}

/** The share of a sample's age it waits between polls once past pollMs / share (200 ms at 10 ms). */
export const REDIS_POLL_SHARE = 0.05;

/**
 * Redis, a read model with one version per row: latency by polling one row per
 * transaction until its `ev` column reaches the transaction's value (resolution: the poll
 * interval, or 5 % of the latency past 200 ms: redisPollDelay); counts by comparing every
 * row the load touched with the row's last change.
 */
export class RedisObserver implements SinkObserver {
  readonly sink = 'redis' as const;
  readonly latency: LatencyRecorder;
  private readonly pending: Array<{ key: string; ev: number; intended: number; since: number; due: number }> = [];
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  /** Samples given up (not seen within the sample timeout) or not taken (too many pending). */
  samplesDropped = 0;

  constructor(
    private readonly redis: Redis,
    private readonly ledger: Ledger,
    private readonly rowKeyPrefix: string,
    private readonly window: () => MeasuredWindow,
    private readonly pollMs = 10,
  ) {
    this.latency = new LatencyRecorder(`poll: one row per transaction, its ev field in Redis every ${pollMs} ms (past ${Math.round(pollMs / REDIS_POLL_SHARE)} ms of latency, every ${REDIS_POLL_SHARE * 100} % of it) until it reaches the transaction's value - intended send time (resolution ${pollMs} ms, or ${REDIS_POLL_SHARE * 100} % past ${Math.round(pollMs / REDIS_POLL_SHARE)} ms)`);
    this.timer = setInterval(() => void this.poll(), pollMs);
  }

  rowKey(id: number): string {
    return `${this.rowKeyPrefix}${canonicalJson({ id: String(id) })}`;
  }

  /** The writer's commit hook: sample the transaction's last upserted row. */
  committed(changes: ReadonlyArray<{ ev: number; id: number; kind: string; newId?: number }>, intended: number): void {
    const { from, until } = this.window();
    if (!(intended >= from && intended < until)) return;
    const last = [...changes].reverse().find((c) => c.kind !== 'delete');
    if (!last) return;
    if (this.pending.length >= MAX_PENDING) {
      this.samplesDropped++;
      return;
    }
    this.pending.push({ key: this.rowKey(last.kind === 'move' ? last.newId! : last.id), ev: last.ev, intended, since: Date.now(), due: 0 });
  }

  private async poll(): Promise<void> {
    if (this.polling || this.pending.length === 0) return;
    this.polling = true;
    try {
      const asked = Date.now();
      const batch = this.pending.filter((p) => p.due <= asked).slice(0, 500);
      if (batch.length === 0) return;
      const pipeline = this.redis.pipeline();
      for (const p of batch) pipeline.hget(p.key, 'ev');
      const results = (await pipeline.exec()) ?? [];
      const now = Date.now();
      const done = new Set<(typeof batch)[number]>();
      results.forEach(([err, value], i) => {
        const p = batch[i]!;
        if (!err && value !== null && Number(JSON.parse(String(value))) >= p.ev) {
          this.latency.record(now - p.intended);
          done.add(p);
        } else if (now - p.since > SAMPLE_TIMEOUT_MS) {
          this.samplesDropped++;
          done.add(p);
        } else {
          p.due = now + redisPollDelay(now - p.intended, this.pollMs);
        }
      });
      const kept = this.pending.filter((p) => !done.has(p));
      this.pending.length = 0;
      this.pending.push(...kept);
    } catch {
      // Redis busy or restarting: the next tick tries again (latency then includes the wait).
    } finally {
      this.polling = false;
    }
  }

  seen(): null {
    return null;
  }

  async count(): Promise<SinkCounts> {
    let expected = 0;
    let lost = 0;
    let unexpected = 0;
    let lingering = 0;
    const first = this.ledger.firstId;
    for (let from = first; from <= this.ledger.maxId; from += 500) {
      const ids: number[] = [];
      for (let id = from; id < from + 500 && id <= this.ledger.maxId; id++) ids.push(id);
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hget(this.rowKey(id), 'ev');
      const results = (await pipeline.exec()) ?? [];
      ids.forEach((id, i) => {
        const [err, value] = results[i] ?? [null, null];
        if (err) throw err;
        const want = this.ledger.lastEvOf(id);
        if (want === 0) return; // an id the load never committed
        expected++;
        const have = value === null || value === undefined ? null : Number(JSON.parse(String(value)));
        if (want < 0) {
          if (have !== null) {
            lost++; // should be gone (deleted, or moved to another key): its removal is missing
            lingering++;
          }
        } else if (have === null || have < want) lost++;
        else if (have > want) unexpected++;
      });
    }
    return {
      method: 'final state: every row the load touched, its ev field in Redis against the row\'s last committed change (present or gone)',
      unit: 'rows',
      expected,
      lost,
      lingering,
      unexpected,
    };
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

const MAX_PENDING = 20_000;
const SAMPLE_TIMEOUT_MS = 120_000;

/**
 * BigQuery: after the drain, the `changes_once` view (each event once), streamed in
 * ingestion order: every event counted, and latency from the row's ingested_at (the
 * deliverer's clock when it wrote the row) - intended send time, every event.
 */
export class BigQueryObserver implements SinkObserver {
  readonly sink = 'bigquery' as const;
  readonly latency = new LatencyRecorder('ingested_at of each event in the changes_once view (the sink writer\'s clock at its insert) - intended send time, every event');

  constructor(
    private readonly bq: BigQuery,
    private readonly ledger: Ledger,
    private readonly names: { projectId: string; dataset: string; table: string; viewOnce: string; sourceSchema: string; sourceTable: string },
    private readonly window: () => MeasuredWindow,
  ) {}

  seen(): null {
    return null;
  }

  async count(): Promise<SinkCounts> {
    const n = this.names;
    const ref = (name: string) => `\`${n.projectId}.${n.dataset}.${name}\``;
    const where = `source_schema = '${n.sourceSchema}' AND source_table = '${n.sourceTable}'`;
    const tally = new EventTally(this.ledger);
    const { from, until } = this.window();
    const stream = this.bq.createQueryStream({
      query: `SELECT op, row_key, after, ingested_at FROM ${ref(n.viewOnce)} WHERE ${where} ORDER BY ingested_at, version`,
    });
    for await (const row of stream as AsyncIterable<{ op: string; row_key: string; after: string | null; ingested_at: { value: string } | string }>) {
      const ev = tally.add(row.op, JSON.parse(row.row_key), row.after === null ? null : JSON.parse(row.after));
      if (ev === undefined) continue;
      const intended = this.ledger.intendedAt(ev);
      const ingested = Date.parse(typeof row.ingested_at === 'string' ? row.ingested_at : row.ingested_at.value);
      if (intended >= from && intended < until) this.latency.record(ingested - intended);
    }
    const [[raw]] = (await this.bq.query({ query: `SELECT COUNT(*) AS n FROM ${ref(n.table)} WHERE ${where}` })) as unknown as [[{ n: number }]];
    const counts = tally.counts(`${n.viewOnce} view: each event id once; the row's ev column names the event`);
    counts.copies_collapsed = Number(raw?.n ?? 0) - (tally.distinct + tally.duplicates + tally.unexpected);
    return counts;
  }

  async stop(): Promise<void> {}
}

import type pg from 'pg';
import { Ledger, type Change } from './ledger.js';
import { LatencyRecorder, type LatencySummary } from './latency.js';
import { sleepUnlessAborted as sleep } from '../timeout.js';
import { MIX, randomText, transactionSql, type WorkloadOptions } from './workload.js';

/**
 * The open-loop load writer. Transaction n is due at start + n * interval, fixed by the
 * schedule. Each of `connections` workers takes the next transaction number, waits until
 * it is due (if it is not yet) and writes it; when every connection is busy, a due
 * transaction waits for one but keeps its intended time, so a stall anywhere (PostgreSQL,
 * this process) shows up as latency rather than as a lower load (no coordinated
 * omission). How late the writer started each transaction is recorded too.
 */
export interface WriterOptions extends WorkloadOptions {
  table: string;
  rate: number;
  txSize: number;
  durationS: number;
  warmupS: number;
  /** The first row id this run may use (above any row of the table). */
  firstId: number;
  /** Called after each transaction commits (the Redis observer samples one of its rows). */
  onCommit?: (changes: ReadonlyArray<Change>, intendedMs: number) => void;
}

export interface WriterFigures {
  offered_rate: number;
  committed_events: number;
  committed_transactions: number;
  /** Events whose intended time falls in the measured window (after the warm-up). */
  measured_events: number;
  /** Committed events of the measured window per second of the window. */
  achieved_rate: number;
  /** How late each transaction started against its schedule. */
  behind_schedule: { late_transactions: number; late_threshold_ms: number; p99_ms: number | null; max_ms: number | null };
  key_changes: number;
  large_values: number;
}

export class LoadWriter {
  readonly ledger: Ledger;
  readonly totalTransactions: number;
  readonly intervalMs: number;
  startedAt = NaN;
  private next = 0;
  private nextEv = 1;
  private nextId: number;
  /** Row ids that exist now and the position of each in `live` (swap-remove). */
  private readonly live: number[] = [];
  private readonly liveAt: Int32Array;
  private readonly busy: Uint8Array;
  private readonly lag = new LatencyRecorder('writer start - intended send time');
  /** Intended send time -> COMMIT answered, measured window only: the first stage of every sink's latency. */
  private readonly commitLag = new LatencyRecorder('COMMIT answered - intended send time');
  private late = 0;
  private keyChanges = 0;
  private largeValues = 0;
  private readonly sql: string;

  constructor(private readonly options: WriterOptions) {
    this.totalTransactions = Math.max(1, Math.round(((options.durationS + options.warmupS) * options.rate) / options.txSize));
    this.intervalMs = (1000 * options.txSize) / options.rate;
    const capacity = this.totalTransactions * options.txSize;
    this.ledger = new Ledger(capacity, options.firstId);
    this.nextId = options.firstId;
    this.liveAt = new Int32Array(capacity + 1).fill(-1);
    this.busy = new Uint8Array(capacity + 1);
    this.sql = transactionSql(options.table);
  }

  get measuredFrom(): number {
    return this.startedAt + this.options.warmupS * 1000;
  }

  get measuredUntil(): number {
    return this.measuredFrom + this.options.durationS * 1000;
  }

  /** Writes the whole schedule through `clients` (one worker each); resolves when the last transaction committed. */
  async run(clients: pg.Client[], signal: AbortSignal): Promise<void> {
    this.startedAt = Date.now();
    await Promise.all(clients.map((c) => this.worker(c, signal)));
  }

  private async worker(client: pg.Client, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const n = this.next++;
      if (n >= this.totalTransactions) return;
      const due = this.startedAt + n * this.intervalMs;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait, signal);
      if (signal.aborted) return;
      const behind = Date.now() - due;
      this.lag.record(behind);
      if (behind > LATE_MS) this.late++;
      await this.transaction(client, due);
    }
  }

  private async transaction(client: pg.Client, intended: number): Promise<void> {
    const o = this.options;
    const mix = MIX[o.workload];
    const ins = { ids: [] as number[], evs: [] as number[], payloads: [] as string[], bigs: [] as Array<string | null> };
    const upd = { oids: [] as number[], nids: [] as number[], evs: [] as number[], payloads: [] as string[], bigs: [] as Array<string | null> };
    const dels: number[] = [];
    const changes: Change[] = [];
    const big = () => (Math.random() < o.toastShare ? (this.largeValues++, randomText(o.toastBytes)) : null);
    for (let i = 0; i < o.txSize; i++) {
      const r = Math.random();
      const existing = r >= mix.insert ? this.pickLive() : undefined;
      const ev = this.nextEv++;
      if (existing === undefined) {
        const id = this.nextId++;
        ins.ids.push(id);
        ins.evs.push(ev);
        ins.payloads.push(randomText(o.rowBytes));
        ins.bigs.push(big());
        this.busy[id - o.firstId] = 1;
        changes.push({ ev, id, kind: 'upsert' });
      } else if (r < mix.insert + mix.update) {
        const move = Math.random() < o.keyChangeShare;
        const nid = move ? this.nextId++ : existing;
        if (move) this.keyChanges++;
        upd.oids.push(existing);
        upd.nids.push(nid);
        upd.evs.push(ev);
        upd.payloads.push(randomText(o.rowBytes));
        upd.bigs.push(big());
        this.busy[nid - o.firstId] = 1;
        changes.push(move ? { ev, id: existing, kind: 'move', newId: nid } : { ev, id: existing, kind: 'upsert' });
      } else {
        dels.push(existing);
        changes.push({ ev, id: existing, kind: 'delete' });
      }
    }
    this.ledger.prepare(changes, intended);
    const result = await client.query<{ changed: string }>(this.sql, [
      ins.ids, ins.evs, ins.payloads, ins.bigs, upd.oids, upd.nids, upd.evs, upd.payloads, upd.bigs, dels, Math.round(intended),
    ]);
    const changed = Number(result.rows[0]?.changed);
    if (changed !== changes.length) throw new Error(`the load's transaction changed ${changed} rows, not ${changes.length}: is something else writing to ${o.table}?`);
    const measured = intended >= this.measuredFrom && intended < this.measuredUntil;
    if (measured) this.commitLag.record(Date.now() - intended);
    this.ledger.commit(changes, measured);
    o.onCommit?.(changes, intended);
    for (const c of changes) {
      this.busy[c.id - o.firstId] = 0;
      if (c.kind === 'delete' || c.kind === 'move') this.removeLive(c.id);
      if (c.kind === 'move') {
        this.busy[c.newId! - o.firstId] = 0;
        this.addLive(c.newId!);
      } else if (c.kind === 'upsert' && this.liveAt[c.id - o.firstId] === -1) this.addLive(c.id);
    }
  }

  /** A random existing row no transaction in flight touches, marked busy; undefined when there is none. */
  private pickLive(): number | undefined {
    for (let tries = 0; tries < 8 && this.live.length > 0; tries++) {
      const id = this.live[Math.floor(Math.random() * this.live.length)]!;
      if (this.busy[id - this.options.firstId]) continue;
      this.busy[id - this.options.firstId] = 1;
      return id;
    }
    return undefined;
  }

  private addLive(id: number): void {
    this.liveAt[id - this.options.firstId] = this.live.length;
    this.live.push(id);
  }

  private removeLive(id: number): void {
    const at = this.liveAt[id - this.options.firstId]!;
    if (at < 0) return;
    const last = this.live.pop()!;
    if (last !== id) {
      this.live[at] = last;
      this.liveAt[last - this.options.firstId] = at;
    }
    this.liveAt[id - this.options.firstId] = -1;
  }

  /** The writer's own stage, for the stage report (./stages.ts). */
  commitLagFigures(): { count: number; p50_ms: number | null; p99_ms: number | null } {
    return { count: this.commitLag.count, p50_ms: this.commitLag.at(50), p99_ms: this.commitLag.at(99) };
  }

  figures(): WriterFigures {
    const lag: LatencySummary = this.lag.summary();
    return {
      offered_rate: this.options.rate,
      committed_events: this.ledger.committedEvents,
      committed_transactions: this.ledger.committedTransactions,
      measured_events: this.ledger.measuredEvents,
      achieved_rate: Math.round(this.ledger.measuredEvents / this.options.durationS),
      behind_schedule: { late_transactions: this.late, late_threshold_ms: LATE_MS, p99_ms: lag.p99_ms, max_ms: lag.max_ms },
      key_changes: this.keyChanges,
      large_values: this.largeValues,
    };
  }
}

/** A transaction started later than this behind its schedule counts as late. */
const LATE_MS = 10;

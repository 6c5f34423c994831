import type { Config } from '../config/types.js';
import { derivedNames } from '../config/names.js';
import { makePgClient } from '../clients/postgres.js';
import { backfillStatus } from '../health/backfill.js';
import type { Logger } from '../logger.js';
import { logFailure, outageRecovered, portsOf } from '../outages.js';
import type { PipelineMetrics } from '../metrics.js';

/** As often as the original design's health checks. */
export const MONITOR_INTERVAL_MS = 30_000;
const STOP_WAIT_MS = 2000;

/**
 * What Prometheus needs to know about the pipeline that no single loop of capture or
 * delivery sees: the replication slot as PostgreSQL keeps it (active, lag, WAL retained,
 * confirmed position) and the current WAL position, and the backfill runs. Every `stream`
 * process measures it whatever its role, so a slot nobody reads still shows (and alerts).
 */
export class PipelineMonitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private readonly ports;

  constructor(
    private readonly config: Config,
    private readonly metrics: PipelineMetrics,
    private readonly logger: Logger,
    private readonly intervalMs = MONITOR_INTERVAL_MS,
  ) {
    this.ports = { postgres: config.postgres.port, kafka: portsOf(config.kafka.brokers) };
  }

  start(): void {
    const tick = () => {
      this.running = this.observe().finally(() => {
        this.running = null;
        if (this.timer !== undefined) this.timer = setTimeout(tick, this.intervalMs);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  /** Lets a measurement in flight finish, but never holds a shutdown up for long (Kafka may be gone). */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    // unref: a wait that lost the race must not keep the process alive.
    if (this.running) await Promise.race([this.running, new Promise<void>((resolve) => setTimeout(resolve, STOP_WAIT_MS).unref())]);
  }

  /** One measurement; a failure is logged and leaves the last values, never stops the stream. */
  async observe(): Promise<void> {
    await Promise.all([this.observeSlot(), this.observeBackfills()]);
  }

  private async observeSlot(): Promise<void> {
    const slot = derivedNames(this.config).slot;
    const askedAt = Date.now();
    const pg = makePgClient(this.config.postgres);
    pg.on('error', () => {});
    try {
      await pg.connect();
      const { rows } = await pg.query<{ wal: string; active: boolean | null; lag: string | null; retained: string | null; confirmed: string | null }>(
        `SELECT (pg_current_wal_lsn() - '0/0')::text AS wal, s.active,
                (pg_current_wal_lsn() - s.confirmed_flush_lsn)::text AS lag,
                (pg_current_wal_lsn() - s.restart_lsn)::text AS retained,
                (s.confirmed_flush_lsn - '0/0')::text AS confirmed
           FROM (SELECT 1) one LEFT JOIN pg_replication_slots s ON s.slot_name = $1`,
        [slot],
      );
      const row = rows[0]!;
      this.metrics.walLsn.set(Number(row.wal));
      this.metrics.slotActive.set({ slot }, row.active ? 1 : 0);
      if (row.lag !== null) this.metrics.slotLagBytes.set({ slot }, Number(row.lag));
      if (row.retained !== null) this.metrics.slotRetainedWalBytes.set({ slot }, Number(row.retained));
      if (row.confirmed !== null) this.metrics.slotConfirmedLsn.set({ slot }, Number(row.confirmed));
      // PostgreSQL answers: ends an outage even while capture is idle (else /ready would stay 503).
      outageRecovered(this.logger, 'postgres', 'monitor', askedAt);
    } catch (err) {
      logFailure(this.logger, 'could not measure the replication slot', err, this.ports, 'monitor');
    } finally {
      await pg.end().catch(() => {});
    }
  }

  private async observeBackfills(): Promise<void> {
    const askedAt = Date.now();
    const { runs, errors } = await backfillStatus(this.config, this.logger);
    if (errors.length > 0) {
      logFailure(this.logger, 'could not read the backfill runs', new Error(errors.join('; ')), this.ports, 'monitor');
      return;
    }
    outageRecovered(this.logger, 'kafka', 'monitor', askedAt); // Kafka answers, as above
    for (const state of ['running', 'interrupted', 'done'] as const) {
      this.metrics.backfillRuns.set({ state }, runs.filter((r) => r.state === state).length);
    }
    const interrupted = runs.filter((r) => r.state === 'interrupted').map((r) => r.age_seconds);
    this.metrics.backfillInterruptedAge.set(interrupted.length > 0 ? Math.max(...interrupted) : 0);
  }
}

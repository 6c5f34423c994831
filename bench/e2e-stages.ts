import type { StressReport } from '../src/core/stress/report.js';
import type { StageQuantiles } from '../src/core/stress/stages.js';

export interface StageFigures {
  /** Capture's backlog: the replication slot's lag behind PostgreSQL's WAL, in bytes. */
  capture_slot_lag_bytes: { p50: number | null; max: number | null };
  /**
   * Per sink, its consumer group's lag behind the changes topic (events), and that lag in
   * seconds at the offered rate (how far behind Kafka the sink ran). `end` is the last sample
   * of the measured window: a sink that keeps up ends near 0, one that falls behind ends at
   * its backlog. `kept_up` = 1 - end / events offered in the window (the share delivered by
   * the window's end, from the sink's side of Kafka; 0 when the backlog at the end, warm-up
   * included, is larger than the window).
   */
  sinks: Record<string, { lag_p50: number; lag_max: number; lag_end: number; lag_max_s: number; kept_up: number }>;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor((s.length - 1) / 2)]!;
};

/** Where the time went per stage, from the report's timeline (one sample a second) of the measured window. */
export function stageFigures(r: StressReport, offeredRate: number): StageFigures {
  const measured = r.timeline.filter((p) => p.phase === 'measured');
  const slot = measured.map((p) => p.slot_lag_bytes).filter((b): b is number => b !== null);
  const offered = offeredRate * r.settings.duration_s;
  const sinks: StageFigures['sinks'] = {};
  for (const sink of r.pipeline.sinks) {
    const lag = measured.map((p) => p.consumer_lag[sink]).filter((n): n is number => n !== undefined);
    if (lag.length === 0) continue;
    const max = Math.max(...lag);
    const end = lag[lag.length - 1]!;
    sinks[sink] = { lag_p50: median(lag), lag_max: max, lag_end: end, lag_max_s: Math.round((max / offeredRate) * 100) / 100, kept_up: Math.max(0, Math.round((1 - end / offered) * 1000) / 1000) };
  }
  return { capture_slot_lag_bytes: { p50: slot.length ? median(slot) : null, max: slot.length ? Math.max(...slot) : null }, sinks };
}

/**
 * CPU seconds each process spent per 100k events offered in the measured window (from its
 * share of a core over that window): the figure contention changes least. A sink that fell
 * behind handled fewer events than offered, so its figure is a lower bound then.
 */
export function cpuPer100k(r: StressReport): Record<string, number | null> {
  const rate = r.load.achieved_rate;
  return Object.fromEntries(
    r.machine.processes.map((p) => [p.name, p.cpu_percent === null || !rate ? null : Math.round((p.cpu_percent / 100 / rate) * 100_000 * 100) / 100]),
  );
}

/**
 * The per-stage latencies of the report (src/core/stress/stages.ts) as one line: p50/p99 ms
 * of the load's commit, capture's Kafka transaction, and each sink's capture -> kafka -> write.
 */
export function stageLatencyLine(r: Pick<StressReport, 'stages'>): string {
  const s = r.stages;
  if (!s) return 'latency per stage: not measured';
  const q = (x: StageQuantiles | null) => (x === null || x.count === 0 ? 'n/a' : `${x.p50_ms ?? 'n/a'}/${x.p99_ms ?? 'n/a'}`);
  const sinks = Object.entries(s.sinks).map(([sink, x]) => `${sink}: commit->Kafka ${q(x.capture)}, Kafka->received ${q(x.kafka)}, received->written ${q(x.write)}`);
  return `latency per stage, p50/p99 ms (measured window): intended->PostgreSQL commit ${q(s.load_commit)}; capture's Kafka transaction ${q(s.capture_transaction)}; ${sinks.join('; ')}`;
}

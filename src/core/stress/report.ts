import type { LatencySummary } from './latency.js';
import type { MachineFigures } from './machine.js';
import type { SinkCounts } from './observers.js';
import type { SloResult } from './slo.js';
import type { StageReport } from './stages.js';
import type { StateCheckResult } from './state-check.js';
import type { WriterFigures } from './writer.js';

/** The stress-test report: `--json`, `--report FILE` (schemas/stress-report.v1.schema.json) and the source of `--report-html`. */
export const REPORT_SCHEMA_ID = 'streamctl.stress-report.v1';

export interface TimelinePoint {
  /** Seconds since the load started. */
  t_s: number;
  committed_events: number;
  /** Events committed during the last interval, per second. */
  rate: number;
  slot_lag_bytes: number | null;
  consumer_lag: Record<string, number>;
  /** Committed events a sink does not show yet (only for sinks watched during the run). */
  missing: Record<string, number>;
  phase: 'warmup' | 'measured' | 'drain';
}

export interface SinkReport {
  latency: LatencySummary;
  /** Events of the measured window the sink acknowledged, per second of the window. */
  delivered_rate: number | null;
  /** Per-event counts (every event once, in order): the observers' readers of the sink's effective view. */
  counts: (SinkCounts & { dlq: number }) | null;
  /**
   * Redis and BigQuery only: verify's final-state comparison of the load table after the
   * drain (state-check.ts); null with --no-verify. Absent for HTTP (no state to compare).
   */
  verify?: StateCheckResult | null;
  /** Why a figure is missing, when one is. */
  note?: string;
}

export interface StressReport {
  schema: typeof REPORT_SCHEMA_ID;
  ok: boolean;
  exit_code: number;
  started_at: string;
  finished_at: string;
  settings: {
    rate: number;
    duration_s: number;
    warmup_s: number;
    connections: number;
    tx_size: number;
    row_bytes: number;
    workload: string;
    key_change_share: number;
    toast_share: number;
    drain_timeout_s: number;
    slo: string;
    kill_deliverer_every_s: number | null;
    /** Whether verify compared the final state after the drain (--no-verify: false). */
    verify: boolean;
  };
  pipeline: { mode: 'spawn' | 'running'; layout: string | null; pipeline_id: string; table: string; sinks: string[] };
  load: WriterFigures;
  /** Where the time went per stage (./stages.ts); null when not measured (no process to scrape, or a deliverer killed during the window). */
  stages: StageReport | null;
  sinks: Record<string, SinkReport>;
  lag: { slot_max_bytes: number | null; consumer_max: Record<string, number> };
  drain: { drained: boolean; seconds: number; timeout_s: number; waiting_for: string[] };
  /** --kill-deliverer-every: each SIGKILL, the pid killed and when (seconds since the load started). */
  faults: { deliverer_kills: number; killed: Array<{ name: string; pid: number; at_s: number }> };
  slo: { results: SloResult[]; missed: string[] };
  machine: MachineFigures & { note: string };
  timeline: TimelinePoint[];
}

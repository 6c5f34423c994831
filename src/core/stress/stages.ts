import { DELIVERY_STAGES, type DeliveryStage } from '../delivery/stages.js';
import { histogramDelta, histogramQuantileMs, parseHistograms } from './prom-latency.js';

/** A stage's figures over the measured window. */
export interface StageQuantiles {
  count: number;
  p50_ms: number | null;
  p99_ms: number | null;
}

/**
 * Where the time went, per stage, over the measured window: the load writer's own stage from
 * its clock, the rest from the pipeline processes' histograms (/metrics scraped at the start
 * and the end of the window), so exact only to their buckets.
 */
export interface StageReport {
  method: string;
  /** Intended send time -> the load's COMMIT answered (the writer's queue and PostgreSQL's commit). */
  load_commit: StageQuantiles | null;
  /** Capture writing and committing one Kafka transaction (streamctl_capture_commit_latency_seconds). */
  capture_transaction: StageQuantiles | null;
  /** Per sink, delivery/stages.ts's stages (streamctl_delivery_stage_seconds). */
  sinks: Record<string, Record<DeliveryStage, StageQuantiles>>;
}

export const STAGE_METHOD =
  "per stage over the measured window: load_commit from the load writer's clock; capture_transaction (streamctl_capture_commit_latency_seconds) and each sink's capture = commit_ts -> Kafka record timestamp, kafka = record timestamp -> consumer handed it over, write = handed over -> sink acknowledged (streamctl_delivery_stage_seconds), from the pipeline processes' /metrics at the window's start and end, interpolated within their buckets";

const quantiles = (h: ReturnType<typeof histogramDelta>): StageQuantiles => ({ count: h.count, p50_ms: histogramQuantileMs(h, 0.5), p99_ms: histogramQuantileMs(h, 0.99) });

/** The stages from two scrapes of every pipeline process (same processes, same order), plus the writer's own stage. */
export function stageReport(before: string[], after: string[], sinks: readonly string[], loadCommit: StageQuantiles | null): StageReport {
  const stageAfter = parseHistograms(after, 'streamctl_delivery_stage_seconds', ['sink', 'stage']);
  const stageBefore = parseHistograms(before, 'streamctl_delivery_stage_seconds', ['sink', 'stage']);
  const out: StageReport['sinks'] = {};
  for (const sink of sinks) {
    const per = Object.fromEntries(DELIVERY_STAGES.map((s) => [s, quantiles(histogramDelta(stageAfter.get(`${sink}/${s}`), stageBefore.get(`${sink}/${s}`)))])) as Record<DeliveryStage, StageQuantiles>;
    if (DELIVERY_STAGES.some((s) => per[s].count > 0)) out[sink] = per;
  }
  const commit = histogramDelta(
    parseHistograms(after, 'streamctl_capture_commit_latency_seconds', []).get(''),
    parseHistograms(before, 'streamctl_capture_commit_latency_seconds', []).get(''),
  );
  return { method: STAGE_METHOD, load_commit: loadCommit, capture_transaction: commit.count > 0 ? quantiles(commit) : null, sinks: out };
}

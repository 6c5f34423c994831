import hdr from 'hdr-histogram-js';

/**
 * One sink's latencies in an HDR histogram (hdr-histogram-js: fixed memory however many
 * values, 3 significant digits, so p99.9 of a million events is exact to 0.1 %). Values are
 * recorded in microseconds and reported in milliseconds.
 */
export interface LatencySummary {
  /** How the figure was measured (the report prints it beside the figure). */
  method: string;
  count: number;
  p50_ms: number | null;
  p90_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  'p99.9_ms': number | null;
  max_ms: number | null;
  mean_ms: number | null;
  /** HDR's percentile distribution: the points of the percentile plot. */
  distribution: Array<{ percentile: number; ms: number }>;
}

export class LatencyRecorder {
  private readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, autoResize: true });
  /** Values below 0 (a clock step, or an event seen before its schedule said) are clamped, and counted. */
  clamped = 0;

  constructor(readonly method: string) {}

  record(ms: number): void {
    if (!Number.isFinite(ms)) return;
    if (ms < 0) this.clamped++;
    this.histogram.recordValue(Math.max(1, Math.round(Math.max(0, ms) * 1000)));
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  /** Milliseconds at a percentile (0-100), null when nothing was recorded. */
  at(percentile: number): number | null {
    return this.count === 0 ? null : round3(this.histogram.getValueAtPercentile(percentile) / 1000);
  }

  summary(): LatencySummary {
    const n = this.count;
    return {
      method: this.method,
      count: n,
      p50_ms: this.at(50),
      p90_ms: this.at(90),
      p95_ms: this.at(95),
      p99_ms: this.at(99),
      'p99.9_ms': this.at(99.9),
      max_ms: n === 0 ? null : round3(this.histogram.maxValue / 1000),
      mean_ms: n === 0 ? null : round3(this.histogram.mean / 1000),
      distribution: n === 0 ? [] : percentileTicks(n).map((p) => ({ percentile: p, ms: this.at(p)! })),
    };
  }
}

/**
 * HDR's tick scheme: percentiles 0, 50, 75, 87.5, ... halving the distance to 100 each
 * step, 5 ticks per half, until the step passes one value in `count` (the last is 100).
 */
export function percentileTicks(count: number): number[] {
  const ticks = new Set<number>([0]);
  for (let half = 0; half < 40; half++) {
    const from = 100 - 100 / 2 ** half;
    const width = 100 / 2 ** (half + 1);
    for (let i = 0; i < 5; i++) ticks.add(round6(from + (width * i) / 5));
    if (100 / 2 ** half < 100 / count) break;
  }
  ticks.add(100);
  return [...ticks].sort((a, b) => a - b);
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;
const round6 = (v: number) => Math.round(v * 1e6) / 1e6;

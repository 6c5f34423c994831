import type { LatencySummary } from './latency.js';

/**
 * The fallback for a sink this command cannot read (an external HTTP system): the
 * pipeline's own `processing_latency_seconds` histogram (deliverer clock at the sink's
 * acknowledgement - commit_ts), scraped from its /metrics at the start and the end of the
 * measured window. Quantiles are interpolated within a bucket as Prometheus'
 * histogram_quantile does, so they are exact only to the bucket they fall in; the method
 * says so.
 */
export interface PromHistogram {
  /** upper bound (s) -> cumulative count */
  buckets: Map<number, number>;
  count: number;
  sum: number;
}

/** processing_latency_seconds per sink label, summed over every text given (one per process). */
export function parseLatencyHistograms(texts: string[]): Map<string, PromHistogram> {
  return parseHistograms(texts, 'processing_latency_seconds', ['sink']);
}

/**
 * One histogram metric of Prometheus text, per series: the values of `labels` joined by
 * '/' (a series missing one of them is skipped; no labels: one series, key ''), summed over
 * every text given (one per process).
 */
export function parseHistograms(texts: string[], metric: string, labels: readonly string[]): Map<string, PromHistogram> {
  const out = new Map<string, PromHistogram>();
  const get = (key: string) => {
    let h = out.get(key);
    if (!h) out.set(key, (h = { buckets: new Map(), count: 0, sum: 0 }));
    return h;
  };
  const line = new RegExp(`^${metric}_(bucket|count|sum)(?:\\{([^}]*)\\})? (\\S+)$`);
  for (const text of texts) {
    for (const row of text.split('\n')) {
      const m = line.exec(row);
      if (!m) continue;
      const all = m[2] ?? '';
      const values = labels.map((l) => new RegExp(`(?:^|,)${l}="([^"]+)"`).exec(all)?.[1]);
      if (values.some((v) => v === undefined)) continue;
      const h = get(values.join('/'));
      const value = Number(m[3]);
      if (m[1] === 'bucket') {
        const raw = /le="([^"]+)"/.exec(all)?.[1] ?? '+Inf';
        const le = raw === '+Inf' ? Infinity : Number(raw);
        h.buckets.set(le, (h.buckets.get(le) ?? 0) + value);
      } else if (m[1] === 'count') h.count += value;
      else h.sum += value;
    }
  }
  return out;
}

export function histogramDelta(after: PromHistogram | undefined, before: PromHistogram | undefined): PromHistogram {
  const buckets = new Map<number, number>();
  for (const [le, n] of after?.buckets ?? []) buckets.set(le, n - (before?.buckets.get(le) ?? 0));
  return { buckets, count: (after?.count ?? 0) - (before?.count ?? 0), sum: (after?.sum ?? 0) - (before?.sum ?? 0) };
}

/** histogram_quantile, in ms; null when empty; the lower bound of +Inf's bucket when the rank falls there. */
export function histogramQuantileMs(h: PromHistogram, q: number): number | null {
  if (h.count <= 0) return null;
  const bounds = [...h.buckets.keys()].sort((a, b) => a - b);
  const rank = q * h.count;
  let lower = 0;
  let below = 0;
  for (const le of bounds) {
    const cumulative = h.buckets.get(le)!;
    if (cumulative >= rank) {
      if (le === Infinity) return lower * 1000;
      const inBucket = cumulative - below;
      return round3((lower + (le - lower) * (inBucket > 0 ? (rank - below) / inBucket : 1)) * 1000);
    }
    lower = le;
    below = cumulative;
  }
  return null;
}

export function summaryFromHistogram(h: PromHistogram, source: string): LatencySummary {
  const q = (x: number) => histogramQuantileMs(h, x);
  const finite = [...h.buckets].filter(([le]) => le !== Infinity).sort((a, b) => a[0] - b[0]);
  return {
    method: `fallback: processing_latency_seconds from ${source} (deliverer clock at the sink's acknowledgement - commit_ts, not the schedule), interpolated within its bucket`,
    count: h.count,
    p50_ms: q(0.5),
    p90_ms: q(0.9),
    p95_ms: q(0.95),
    p99_ms: q(0.99),
    'p99.9_ms': q(0.999),
    // A histogram knows no maximum: the upper bound of the highest bucket with a value.
    max_ms: h.count > 0 ? round3(1000 * (finite.find(([, n]) => n >= h.count)?.[0] ?? NaN)) : null,
    mean_ms: h.count > 0 ? round3((1000 * h.sum) / h.count) : null,
    distribution: h.count > 0 ? finite.map(([le, n]) => ({ percentile: Math.min(100, round3((100 * n) / h.count)), ms: round3(le * 1000) })) : [],
  };
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;

/**
 * Service-level objectives for `stress-test --slo`: a comma-separated list such as
 * `p99<200ms,loss=0,dup=0,lag<64MiB`, each optionally scoped to one sink
 * (`http.p99<500ms`). Parsing reports every bad term at once; evaluation names each miss
 * and by how much.
 */

export const LATENCY_METRICS = ['p50', 'p90', 'p99', 'p99.9', 'max', 'mean'] as const;
export const COUNT_METRICS = ['loss', 'dup', 'order', 'dlq'] as const;
export const BYTE_METRICS = ['lag'] as const;
export const RATE_METRICS = ['rate'] as const;
export type SloMetric = (typeof LATENCY_METRICS)[number] | (typeof COUNT_METRICS)[number] | (typeof BYTE_METRICS)[number] | (typeof RATE_METRICS)[number];
export type SloOp = '<' | '<=' | '=' | '>' | '>=';

export interface Slo {
  /** The term as written. */
  text: string;
  /** A sink name, or null for every sink (a pipeline-wide metric such as lag ignores it). */
  sink: string | null;
  metric: SloMetric;
  op: SloOp;
  /** In the metric's unit: ms for latency, events for counts, bytes for lag, events/s for rate. */
  limit: number;
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 };

export function parseSlos(spec: string, sinks: readonly string[]): { slos: Slo[]; problems: string[] } {
  const slos: Slo[] = [];
  const problems: string[] = [];
  for (const raw of spec.split(',').map((t) => t.trim()).filter(Boolean)) {
    const m = /^(?:([a-z]+)\.)?(p50|p90|p99\.9|p999|p99|max|mean|loss|dup|duplicates|order|dlq|lag|rate)\s*(<=|>=|<|>|=)\s*([\d.]+)\s*([a-zA-Z/]*)$/.exec(raw);
    if (!m) {
      problems.push(`--slo '${raw}': expected <metric><op><value>, metric one of ${[...LATENCY_METRICS, ...COUNT_METRICS, ...BYTE_METRICS, ...RATE_METRICS].join(', ')} (e.g. p99<200ms, loss=0, lag<64MiB, rate>=900)`);
      continue;
    }
    const [, sink, name, op, value, unitRaw] = m as unknown as [string, string | undefined, string, SloOp, string, string];
    const metric = (name === 'p999' ? 'p99.9' : name === 'duplicates' ? 'dup' : name) as SloMetric;
    const unit = unitRaw.toLowerCase();
    let factor = 1;
    if ((LATENCY_METRICS as readonly string[]).includes(metric)) {
      const f = TIME_UNITS[unit === '' ? 'ms' : unit];
      if (f === undefined) problems.push(`--slo '${raw}': latency unit must be us, ms, s or m`);
      factor = f ?? 1;
    } else if (metric === 'lag') {
      const f = BYTE_UNITS[unit === '' ? 'b' : unit];
      if (f === undefined) problems.push(`--slo '${raw}': lag unit must be B, KB, MB, GB, KiB, MiB or GiB`);
      factor = f ?? 1;
    } else if (unit !== '' && !(metric === 'rate' && unit === '/s')) {
      problems.push(`--slo '${raw}': ${metric} takes a plain number`);
    }
    if (sink !== undefined && !sinks.includes(sink)) problems.push(`--slo '${raw}': unknown sink '${sink}' (sinks under test: ${sinks.join(', ') || 'none'})`);
    slos.push({ text: raw, sink: sink ?? null, metric, op, limit: Number(value) * factor });
  }
  return { slos, problems };
}

export interface SloResult {
  slo: string;
  /** The sink the figure is from; null for a pipeline-wide figure. */
  sink: string | null;
  metric: SloMetric;
  limit: number;
  /** null: the figure could not be measured for that sink (see `note`). */
  actual: number | null;
  ok: boolean;
  /** How far past the limit, in the metric's unit (0 when met). */
  by: number;
  unit: string;
  note?: string;
  /** 'verify': the figure is verify's final-state comparison (rows differing from PostgreSQL), not the event count. */
  from?: 'verify';
}

/** The figures an SLO is checked against: per sink (null: not measured; absent: not applicable), and the pipeline-wide ones. */
export interface SloFigures {
  sinks: Record<string, Partial<Record<SloMetric, number | null>>>;
  /** Maximum replication slot lag in bytes during the run. */
  lag: number | null;
  /**
   * Per sink that keeps row state, verify's persistent differences (rows; null: verify gave no
   * verdict). A `loss` SLO is checked against it too: a row in a wrong final state is a loss
   * even when every event was counted.
   */
  stateDifferences?: Record<string, number | null>;
}

const unitOf = (metric: SloMetric): string =>
  (LATENCY_METRICS as readonly string[]).includes(metric) ? 'ms' : metric === 'lag' ? 'bytes' : metric === 'rate' ? 'events/s' : 'events';

function holds(actual: number, op: SloOp, limit: number): boolean {
  switch (op) {
    case '<':
      return actual < limit;
    case '<=':
      return actual <= limit;
    case '=':
      return actual === limit;
    case '>':
      return actual > limit;
    case '>=':
      return actual >= limit;
  }
}

export function evaluateSlos(slos: readonly Slo[], figures: SloFigures): SloResult[] {
  const out: SloResult[] = [];
  for (const slo of slos) {
    const unit = unitOf(slo.metric);
    if (slo.metric === 'lag') {
      out.push(result(slo, null, figures.lag, unit));
      continue;
    }
    const sinks = slo.sink ? [slo.sink] : Object.keys(figures.sinks);
    for (const sink of sinks) {
      const figure = figures.sinks[sink]?.[slo.metric];
      // Absent (not null): the figure does not exist for that sink (duplicates in a read model
      // that keeps one version per row): the SLO does not apply there, and says so.
      if (figure === undefined) out.push({ slo: slo.text, sink, metric: slo.metric, limit: slo.limit, actual: null, ok: true, by: 0, unit, note: 'not applicable to this sink' });
      else out.push(result(slo, sink, figure, unit));
      const state = figures.stateDifferences;
      if (slo.metric === 'loss' && state && sink in state) {
        const r = result(slo, sink, state[sink] ?? null, 'rows');
        out.push({ ...r, from: 'verify', ...(r.actual === null ? { note: 'verify gave no verdict (see the sink\'s verify entry)' } : {}) });
      }
    }
  }
  return out;
}

function result(slo: Slo, sink: string | null, actual: number | null, unit: string): SloResult {
  // A figure that cannot be measured is not a pass: a gate must not go green on no data.
  if (actual === null || Number.isNaN(actual)) return { slo: slo.text, sink, metric: slo.metric, limit: slo.limit, actual: null, ok: false, by: 0, unit, note: 'not measured' };
  const ok = holds(actual, slo.op, slo.limit);
  return { slo: slo.text, sink, metric: slo.metric, limit: slo.limit, actual, ok, by: ok ? 0 : Math.abs(actual - slo.limit), unit };
}

/** "http p99 412.3 ms > 200 ms (by 212.3 ms)" */
export function describeMiss(r: SloResult): string {
  const where = r.sink ? `${r.sink} ` : '';
  if (r.from === 'verify') {
    if (r.actual === null) return `${where}${r.slo} (verify, final state): ${r.note ?? 'not measured'}`;
    return `${where}verify: ${r.actual} row${r.actual === 1 ? '' : 's'} in a final state different from PostgreSQL, misses ${r.slo} (by ${r.by} ${r.unit})`;
  }
  if (r.actual === null) return `${where}${r.slo}: ${r.note ?? 'not measured'}`;
  const fmt = (v: number) => `${Number.isInteger(v) ? v : v.toFixed(1)} ${r.unit}`;
  return `${where}${r.metric} ${fmt(r.actual)} misses ${r.slo} (by ${fmt(r.by)})`;
}

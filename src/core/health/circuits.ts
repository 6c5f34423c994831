import type { Config } from '../config/types.js';

/**
 * Circuit breakers live in the `stream` process, and `status` is another process: it reads
 * them where Prometheus does, from the stream's /metrics at `metrics.host:metrics.port`
 * (`circuit_state` and `circuit_opened_timestamp_seconds`). No extra state to keep in step,
 * and what `status` shows is exactly what the alerts see. With several deliverer processes,
 * point `metrics` at the one to ask (each breaker is per process).
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

export interface SinkCircuit {
  sink: string;
  state: CircuitState;
  /** Seconds since the circuit left the closed state (null while closed). */
  open_seconds: number | null;
}

export interface CircuitsStatus {
  /** Where they were read from (null when the configuration gives no fixed port). */
  source: string | null;
  sinks: SinkCircuit[];
  /** Why they could not be read (the stream is not running, say); not a component down. */
  error?: string;
}

const STATES: Record<string, CircuitState> = { '0': 'closed', '1': 'open', '2': 'half-open' };

/** The per-sink samples of one metric in Prometheus' text format. */
export function samplesBySink(text: string, metric: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const m = /^[^{]+\{(.*)\}\s+(\S+)/.exec(line);
    const sink = m && /(?:^|,)sink="((?:[^"\\]|\\.)*)"/.exec(m[1]!)?.[1];
    if (m && sink !== undefined && sink !== null) found.set(sink, Number(m[2]));
  }
  return found;
}

export function circuitsFromMetrics(text: string, nowMs: number): SinkCircuit[] {
  const states = samplesBySink(text, 'circuit_state');
  const opened = samplesBySink(text, 'circuit_opened_timestamp_seconds');
  return [...states].map(([sink, value]) => {
    const state = STATES[String(value)] ?? 'closed';
    const since = opened.get(sink) ?? 0;
    return { sink, state, open_seconds: state === 'closed' || since <= 0 ? null : Math.max(0, Math.round(nowMs / 1000 - since)) };
  });
}

export async function circuitsStatus(config: Config, timeoutMs: number): Promise<CircuitsStatus> {
  const { host, port } = config.metrics;
  if (port === 0) return { source: null, sinks: [], error: 'metrics.port is 0 (a random port): set it to read the circuits of a running stream' };
  const source = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}/metrics`;
  try {
    const res = await fetch(source, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return { source, sinks: [], error: `${source} answered ${res.status}` };
    const text = await res.text();
    // Pipelines share a host and its default port: /metrics does not say whose they are, /ready does.
    const ready = await fetch(source.replace(/\/metrics$/, '/ready'), { signal: AbortSignal.timeout(timeoutMs) });
    const { pipeline } = (await ready.json()) as { pipeline?: string };
    if (pipeline !== config.pipeline.id) {
      return { source, sinks: [], error: `the stream at ${source} is pipeline ${pipeline ?? '(unknown)'}, not ${config.pipeline.id}: set metrics.host/metrics.port to this pipeline's stream` };
    }
    return { source, sinks: circuitsFromMetrics(text, Date.now()) };
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    return { source, sinks: [], error: `no stream answers at ${source} (${cause}): start 'streamctl stream' or set metrics.host/metrics.port to it` };
  }
}

import type { Config } from '../config/types.js';
import { streamBaseUrl, type StreamReady } from './stream-ready.js';

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

export async function circuitsStatus(config: Config, timeoutMs: number, ready: { answered: boolean; body: StreamReady; error?: string }): Promise<CircuitsStatus> {
  if (config.metrics.port === 0) return { source: null, sinks: [], error: 'metrics.port is 0 (a random port): set it to read the circuits of a running stream' };
  const source = `${streamBaseUrl(config)}/metrics`;
  const absent = (cause: string): CircuitsStatus => ({ source, sinks: [], error: `no stream answers at ${source} (${cause}): start 'streamctl stream' or set metrics.host/metrics.port to it` });
  if (!ready.answered) return absent(ready.error ?? 'no answer');
  // Pipelines share a host and its default port: /metrics does not say whose they are, /ready does.
  const { pipeline } = ready.body;
  if (pipeline !== config.pipeline.id) {
    return { source, sinks: [], error: `the stream at ${source} is pipeline ${pipeline ?? '(unknown)'}, not ${config.pipeline.id}: set metrics.host/metrics.port to this pipeline's stream` };
  }
  try {
    const res = await fetch(source, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return { source, sinks: [], error: `${source} answered ${res.status}` };
    return { source, sinks: circuitsFromMetrics(await res.text(), Date.now()) };
  } catch (err) {
    return absent((err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).message);
  }
}

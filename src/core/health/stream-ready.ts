import type { Config } from '../config/types.js';
import type { SinkStateProblem } from '../delivery/sink-state.js';
import type { StuckComponent } from './progress.js';
import type { DownComponent } from './watch.js';
import type { HistoryLost } from '../delivery/replay-retained.js';

/** What `stream` answers on /ready (src/commands/stream.ts readyDetail). */
export interface StreamReady {
  ready?: boolean;
  pipeline?: string;
  stuck?: StuckComponent[];
  sinks?: SinkStateProblem[];
  /** Parts the stream could not reach at its last probe (health/watch.ts). */
  down?: DownComponent[];
  /** Sinks whose stored history was dropped and replayed from the topic (delivery/replay-retained.ts). */
  history_lost?: HistoryLost[];
}

/** The running stream's metrics server as `status` reaches it (a wildcard bind is reached on loopback). */
export function streamBaseUrl(config: Config): string {
  const { host, port } = config.metrics;
  return `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`;
}

/**
 * One read of the stream's /ready, shared by status's stuck, rebuild and circuit views.
 * `answered` is false when nothing answers there; `body.pipeline` says whose stream it is
 * (pipelines on one host share the default port).
 */
export async function readStreamReady(config: Config, timeoutMs: number): Promise<{ answered: boolean; body: StreamReady; error?: string }> {
  try {
    const res = await fetch(`${streamBaseUrl(config)}/ready`, { signal: AbortSignal.timeout(timeoutMs) });
    return { answered: true, body: (await res.json()) as StreamReady };
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    return { answered: false, body: {}, error: cause };
  }
}

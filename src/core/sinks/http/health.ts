import { timed } from '../../timed.js';
import { redactUrl } from '../../redact-url.js';
import type { SinkHealth } from '../plugin.js';
import type { HttpSinkConfig } from './config.js';

export const httpEndpoint = (c: HttpSinkConfig): string => redactUrl(c.healthUrl || c.url);

/** GET of healthUrl answering 2xx, or else a HEAD of the event URL answering below 500 (405 is fine). */
export async function checkHttp(config: HttpSinkConfig, { timeoutMs }: { timeoutMs: number }): Promise<SinkHealth> {
  const target = config.healthUrl || config.url;
  try {
    const { value: res, ms } = await timed(() => fetch(target, { method: config.healthUrl ? 'GET' : 'HEAD', signal: AbortSignal.timeout(timeoutMs) }));
    await res.body?.cancel();
    const healthy = config.healthUrl ? res.ok : res.status < 500;
    if (!healthy) throw new Error(`answered HTTP ${res.status}`);
    return { rtt_ms: ms, detail: { status: res.status } };
  } catch (err) {
    // fetch says only 'fetch failed'; the reason (ECONNREFUSED, bad port, DNS) is in its cause.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message;
    throw why ? new Error(`${(err as Error).message} (${why})`) : err;
  }
}

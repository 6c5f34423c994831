/** Shared by the sinks whose servers say when to come back (HTTP 429/503, BigQuery's 429/503). */

/**
 * Retry-After (RFC 9110): delay-seconds or an HTTP date. Milliseconds from `now`, never
 * negative; undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Every HTTP-date form starts with a day name; anything else (-5, 1.5) is unreadable.
  if (!/^[A-Za-z]{3}/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

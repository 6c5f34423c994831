import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Request signing for the HTTP sink: HMAC-SHA256 over `<unix seconds>.<body>`, sent as
 * `X-Streamctl-Signature: t=<unix seconds>,v1=<hex>`. The timestamp is inside the MAC so
 * a captured request cannot be replayed later with a fresh time; the receiver rejects
 * timestamps outside its tolerance.
 */
export const SIGNATURE_HEADER = 'x-streamctl-signature';
export const IDEMPOTENCY_HEADER = 'idempotency-key';

export function sign(key: string | Buffer, body: string | Buffer, unixSeconds: number = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', key).update(`${unixSeconds}.`).update(body).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

export type SignatureCheck = { ok: true } | { ok: false; reason: 'missing' | 'malformed' | 'stale' | 'mismatch' };

export function verify(
  key: string | Buffer,
  body: string | Buffer,
  header: string | undefined,
  options: { nowSeconds?: number; toleranceSeconds?: number } = {},
): SignatureCheck {
  if (!header) return { ok: false, reason: 'missing' };
  const parts = Object.fromEntries(header.split(',').map((p) => p.trim().split('=', 2) as [string, string]));
  const t = Number(parts['t']);
  const given = parts['v1'];
  if (!Number.isInteger(t) || !given || !/^[0-9a-f]{64}$/.test(given)) return { ok: false, reason: 'malformed' };
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (options.toleranceSeconds ?? 300)) return { ok: false, reason: 'stale' };
  const expected = createHmac('sha256', key).update(`${t}.`).update(body).digest();
  const ok = timingSafeEqual(expected, Buffer.from(given, 'hex'));
  return ok ? { ok: true } : { ok: false, reason: 'mismatch' };
}

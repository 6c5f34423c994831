import { isNativeFenced } from '../clients/librdkafka.js';

/**
 * A zombie: another process took over this transactional id. Never retried. librdkafka
 * says it with a code (-144 `ERR__FENCED`, fatal, or the broker's PRODUCER_FENCED /
 * INVALID_PRODUCER_EPOCH); kafkajs (still used by other commands) with an error type.
 */
export function isFenced(err: unknown): boolean {
  if (isNativeFenced(err)) return true;
  const e = err as { type?: string; name?: string; message?: string; cause?: unknown };
  if (e?.type === 'PRODUCER_FENCED' || e?.type === 'INVALID_PRODUCER_EPOCH' || e?.type === 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED') return true;
  if (/fenced|epoch/i.test(e?.message ?? '') && /producer|instance/i.test(e?.message ?? '')) return true;
  return e?.cause !== undefined && e.cause !== err ? isFenced(e.cause) : false;
}

import { sleep } from '../timeout.js';

/**
 * kafkajs retries CONCURRENT_TRANSACTIONS for sends but not for AddOffsetsToTxn. The
 * broker answers it while it is still writing the markers of the previous transaction,
 * which takes a few milliseconds, so a short fixed pause is right.
 */
export async function retryConcurrentTransactions<T>(work: () => Promise<T>, attempts = 200): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await work();
    } catch (err) {
      if ((err as { type?: string }).type !== 'CONCURRENT_TRANSACTIONS' || i >= attempts) throw err;
      await sleep(5);
    }
  }
}

/** A zombie: another process took over this transactional id. Never retried. */
export function isFenced(err: unknown): boolean {
  const e = err as { type?: string; name?: string; message?: string; cause?: unknown };
  if (e?.type === 'PRODUCER_FENCED' || e?.type === 'INVALID_PRODUCER_EPOCH' || e?.type === 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED') return true;
  if (/fenced|epoch/i.test(e?.message ?? '') && /producer/i.test(e?.message ?? '')) return true;
  return e?.cause !== undefined && e.cause !== err ? isFenced(e.cause) : false;
}

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

/**
 * Kafka aborted a transaction that stayed open past transaction.timeout.ms (a transaction
 * begun before a broker restart and carried on after it). The coordinator bumps the
 * producer's epoch to do so, which librdkafka reports as fenced ("fenced by a newer
 * instance"), but no other process took over: the caller starts again with a new producer.
 * crash:capture-kafka met it twice (a broker down ~40 s, the transaction fenced 60 s after it
 * began), and capture stopped as replaced.
 */
export class TransactionTimedOutError extends Error {
  override readonly name = 'TransactionTimedOutError';
  constructor(
    readonly openForMs: number,
    readonly timeoutMs: number,
  ) {
    super(`Kafka aborted the transaction: open ${Math.round(openForMs / 1000)} s, past kafka.transactionTimeoutMs (${timeoutMs} ms); librdkafka reported it as fenced, but no other process took over`);
  }
}

/** `err` as a TransactionTimedOutError when it is a fencing of a transaction open `openForMs`, at least `timeoutMs`; else `err`. */
export function explainFenced(err: unknown, openForMs: number, timeoutMs: number | undefined): unknown {
  return timeoutMs !== undefined && openForMs >= timeoutMs && isFenced(err) ? new TransactionTimedOutError(openForMs, timeoutMs) : err;
}

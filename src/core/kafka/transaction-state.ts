/**
 * The life of a checkpointed transactional producer, as a pure state machine (KafkaJS keeps
 * its producer's the same way: `eosManager/transactionStateMachine.js`). It holds the rules
 * the exactly-once protocol depends on, so they are tested without a broker and survive
 * the move to another Kafka client:
 *  - one transaction open at a time (Kafka allows one per transactional id);
 *  - the checkpoint is the last thing a transaction gets: no record after it, so the
 *    checkpoint covers everything the commit makes visible;
 *  - a transaction whose send failed is never committed, only aborted (it may miss records);
 *  - a fenced producer (another one took the transactional id) does nothing more, ever.
 */
export type TransactionState =
  /** Not connected, or disconnected: no producer id. */
  | 'disconnected'
  /** Producer id initialised (older producers of this id fenced); no transaction open. */
  | 'ready'
  /** A transaction is open and takes records. */
  | 'open'
  /** A send of this transaction failed: it can only be aborted. */
  | 'failed'
  /** The checkpoint record and offsets are in the transaction: it takes nothing more. */
  | 'checkpointed'
  | 'committing'
  | 'aborting'
  /** Another producer took the transactional id; final. */
  | 'fenced';

const TRANSITIONS: Readonly<Record<TransactionState, readonly TransactionState[]>> = {
  disconnected: ['ready'],
  ready: ['open', 'disconnected'],
  open: ['checkpointed', 'failed', 'aborting', 'disconnected'],
  failed: ['aborting', 'disconnected'],
  checkpointed: ['committing', 'aborting', 'disconnected'],
  // A failed commit is aborted (or left for the broker to abort when the id is initialised again).
  committing: ['ready', 'aborting', 'disconnected'],
  aborting: ['ready', 'disconnected'],
  fenced: ['disconnected'],
};

/** What a caller may do in each state; anything else is a bug in the caller. */
const ALLOWED: Readonly<Record<TransactionOperation, readonly TransactionState[]>> = {
  begin: ['ready'],
  send: ['open'],
  checkpoint: ['open'],
  commit: ['checkpointed'],
  abort: ['open', 'failed', 'checkpointed', 'committing'],
};

export type TransactionOperation = 'begin' | 'send' | 'checkpoint' | 'commit' | 'abort';

export class TransactionStateError extends Error {
  constructor(message: string) {
    super(`transaction state: ${message}`);
    this.name = 'TransactionStateError';
  }
}

export class TransactionStateMachine {
  private current: TransactionState = 'disconnected';
  /** Once fenced, a disconnect does not make the id usable again in this process. */
  private wasFenced = false;

  get state(): TransactionState {
    return this.current;
  }

  get fenced(): boolean {
    return this.wasFenced;
  }

  /** Throws unless `operation` is legal now. */
  guard(operation: TransactionOperation): void {
    if (this.wasFenced) throw new TransactionStateError(`cannot ${operation}: this producer was fenced by another one with the same transactional id`);
    if (!ALLOWED[operation].includes(this.current)) throw new TransactionStateError(`cannot ${operation} in state ${this.current}`);
  }

  transitionTo(next: TransactionState): void {
    if (next === 'fenced') {
      this.wasFenced = true;
      this.current = 'fenced';
      return;
    }
    if (this.wasFenced && next !== 'disconnected') throw new TransactionStateError(`invalid transition fenced -> ${next}`);
    if (!TRANSITIONS[this.current].includes(next)) throw new TransactionStateError(`invalid transition ${this.current} -> ${next}`);
    this.current = next;
  }
}

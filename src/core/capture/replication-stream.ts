import type pg from 'pg';
import { makeReplicationClient } from '../clients/postgres.js';
import type { Pgoutput } from 'pg-logical-replication';
import type { PostgresConfig } from '../config/types.js';
import { RawTextPgoutputPlugin } from '../source/pgoutput-plugin.js';
import { SESSION_OPTIONS } from '../source/pg-types.js';

/**
 * A logical replication connection to one slot, decoded with pg-logical-replication's
 * pgoutput parser. We drive the connection ourselves rather than through the library's
 * service because exactly-once depends on three things it does differently:
 *  - the flush position we confirm is exactly the one we pass (the library adds 1 and
 *    also confirms on a timer whatever it last *received*, which would free WAL that is
 *    not in Kafka yet);
 *  - keepalives are queued in order with the data, so "nothing pending" at a keepalive
 *    really means every change before it has been handled;
 *  - backpressure pauses the socket, so memory stays flat however large the backlog.
 */
export type StreamItem =
  | { kind: 'data'; walStart: bigint; message: Pgoutput.Message }
  | { kind: 'keepalive'; walEnd: bigint };

/**
 * What waits in the read-ahead: a WAL message still as bytes (a copy: pg's parser reuses
 * its buffer), parsed only when the capturer takes it. Parsed, each waiting message was a
 * message, a tuple and a string per column, and the read-ahead is what outlives V8's
 * young-generation collections: those copied and promoted it again and again. As bytes it
 * is one small Buffer (its bytes outside the heap).
 */
type Queued = { kind: 'wal'; walStart: bigint; body: Buffer } | { kind: 'keepalive'; walEnd: bigint };

const PG_EPOCH_MICROS = 946_684_800_000_000n;

export class ReplicationStream {
  private client: pg.Client | null = null;
  private readonly queue = new Fifo<Queued>();
  private waiter: (() => void) | null = null;
  private paused = false;
  private ended = false;
  private failure: Error | null = null;
  private interrupted = false;
  private readonly plugin: RawTextPgoutputPlugin;
  /** Last flush position sent to PostgreSQL (answers keepalives that ask for a reply). */
  private confirmed = 0n;

  constructor(
    private readonly config: PostgresConfig,
    private readonly slot: string,
    publication: string,
    // Read-ahead, in messages (kept as bytes, see Queued). Kept short: 20k/5k parsed held ~300 MiB on a backlog and kept
    // the collector busy with objects that lived long enough to be promoted; the socket
    // and the kernel's buffers hold what PostgreSQL sends meanwhile, so nothing waits.
    private readonly limits = { highWater: 2_000, lowWater: 500 },
  ) {
    this.plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: [publication], messages: true });
  }

  async start(confirmedFlush: bigint): Promise<void> {
    this.confirmed = confirmedFlush;
    const client = makeReplicationClient(this.config, 'streamctl-capture', SESSION_OPTIONS);
    this.client = client;
    client.on('error', (err: Error) => this.fail(err));
    await client.connect();
    const connection = (client as unknown as { connection: RawConnection }).connection;
    connection.on('copyData', ({ chunk }: { chunk: Buffer }) => this.onCopyData(chunk));
    // Resolves when the server ends the stream; rejects on an error (slot busy, dropped...).
    // '0/0': start where the slot's confirmed_flush_lsn says.
    (this.plugin.start(client, this.slot, '0/0') as Promise<unknown>)
      .then(() => this.end())
      .catch((err: Error) => this.fail(err));
  }

  private onCopyData(chunk: Buffer): void {
    const tag = chunk[0];
    if (tag === 0x77 /* w: XLogData */) {
      this.push({ kind: 'wal', walStart: chunk.readBigUInt64BE(1), body: Buffer.from(chunk.subarray(25)) });
    } else if (tag === 0x6b /* k: keepalive */) {
      const walEnd = chunk.readBigUInt64BE(1);
      if (chunk[17] === 1) this.sendStatus(this.confirmed); // the server wants an answer now
      this.push({ kind: 'keepalive', walEnd });
    }
  }

  private push(item: Queued): void {
    this.queue.push(item);
    if (!this.paused && this.queue.length >= this.limits.highWater) {
      this.paused = true;
      this.socket()?.pause();
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private socket(): { pause(): void; resume(): void } | undefined {
    return (this.client as unknown as { connection?: RawConnection } | null)?.connection?.stream;
  }

  /**
   * The next item if one is already read, else null, without waiting: on a backlog nearly
   * every message is, and `next` (async) cost a promise and a turn of the microtask queue
   * for each of them.
   */
  poll(): StreamItem | null {
    if (this.failure) throw this.failure;
    const item = this.queue.shift();
    if (!item) return null;
    if (this.paused && this.queue.length <= this.limits.lowWater) {
      this.paused = false;
      this.socket()?.resume();
    }
    if (item.kind === 'keepalive') return item;
    // In arrival order, so the parser's relation cache is filled before the tuples that use it.
    let message: Pgoutput.Message;
    try {
      message = this.plugin.parse(item.body);
    } catch (err) {
      this.failure ??= new Error(`cannot decode a pgoutput message at ${item.walStart}: ${(err as Error).message}`);
      throw this.failure;
    }
    return { kind: 'data', walStart: item.walStart, message };
  }

  /**
   * The next item, or null after `timeoutMs` with nothing (for linger), when the stream
   * ended, or when `interrupt` was called while it waited.
   */
  async next(timeoutMs: number): Promise<StreamItem | null> {
    this.interrupted = false;
    for (;;) {
      const item = this.poll();
      if (item) return item;
      if (this.ended) return null;
      const arrived = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          this.waiter = null;
          resolve(false);
        }, timeoutMs);
        this.waiter = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      if (!arrived || this.interrupted) return null;
    }
  }

  /** Makes a waiting `next` return null now: the capturer has something else to do (a commit finished). */
  interrupt(): void {
    this.interrupted = true;
    this.wake();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * Standby status update: everything before `flush` is safe to discard. Sent exactly as
   * given: PostgreSQL skips, on restart, transactions that commit before this point.
   */
  sendStatus(flush: bigint): void {
    if (flush > this.confirmed) this.confirmed = flush;
    const connection = (this.client as unknown as { connection?: RawConnection } | null)?.connection;
    if (!connection || this.ended) return;
    const message = Buffer.alloc(34);
    message[0] = 0x72; // 'r'
    message.writeBigUInt64BE(this.confirmed, 1); // written
    message.writeBigUInt64BE(this.confirmed, 9); // flushed
    message.writeBigUInt64BE(this.confirmed, 17); // applied
    message.writeBigUInt64BE(BigInt(Date.now()) * 1000n - PG_EPOCH_MICROS, 25);
    message[33] = 0;
    connection.sendCopyFromChunk(message);
  }

  get confirmedFlush(): bigint {
    return this.confirmed;
  }

  private fail(err: Error): void {
    if (this.ended) return;
    this.failure ??= err;
    this.wake();
  }

  private end(): void {
    this.ended = true;
    this.wake();
  }

  async stop(): Promise<void> {
    this.ended = true;
    this.wake();
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }
}

/**
 * First in, first out, O(1) per item. `Array.prototype.shift` copies the whole array once
 * its backing store is in V8's large-object space (above ~16k items): with a 20k high-water
 * mark, that copy was the largest item of capture's CPU profile on a backlog.
 */
class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 4096 && this.head * 2 >= this.items.length) {
      // Drop the consumed half: amortised O(1), and memory stays bounded by highWater.
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

interface RawConnection {
  on(event: 'copyData', listener: (msg: { chunk: Buffer }) => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
  stream: { pause(): void; resume(): void };
}

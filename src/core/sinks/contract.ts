import type { ChangeEvent } from '../event/envelope.js';

/**
 * The contract between the shared sink pipeline (src/core/delivery/) and one sink.
 *
 * The pipeline owns consuming, validation, enrichment, batching, retries, the circuit
 * breaker, dead-lettering, metrics and offsets. A sink only writes a batch and says, for
 * each record, whether it landed. A batch may be written again after a crash or a
 * rebalance, so `write` must be idempotent per event id.
 */
export type { SinkName } from './registry.js';
import type { SinkName } from './registry.js';

export interface SinkRecord {
  /** The event after validation and enrichment: what the sink stores. */
  event: ChangeEvent;
  topic: string;
  partition: number;
  offset: string;
}

export type WriteResult =
  | { ok: true }
  | {
      ok: false;
      /** True: retrying cannot help (invalid row, HTTP 4xx other than 408/429): straight to the DLQ. */
      permanent: boolean;
      /** Short class for metrics and DLQ headers: 'timeout', 'http_503', 'invalid_row'... */
      errorClass: string;
      message: string;
      /** The sink was told when to come back (HTTP Retry-After), in milliseconds. */
      retryAfterMs?: number;
    };

/** Offsets to store with the data, for a sink that keeps its own (Redis). */
export interface OffsetsToStore {
  group: string;
  /** `topic:partition` -> next offset to read. */
  next: Record<string, string>;
  /** The generation marker the sink must hold for those partitions, else it writes nothing (delivery/sink-state.ts). */
  generation?: string;
}

/**
 * errorClass `<sink>_unreachable`: the sink's server cannot be reached at all (down,
 * restarting). Such events are not the events' fault: when retries run out they are not
 * dead-lettered; the circuit opens and they are read again once the sink answers.
 */
export const isUnreachable = (errorClass: string): boolean => errorClass.endsWith('_unreachable');

/** errorClass of a write refused because the sink no longer holds its generation marker. */
export const SINK_STATE_LOST = 'sink_state_lost';

export interface Sink {
  readonly name: SinkName;
  /** Connects, creates what it needs (tables, views). Throws when it cannot. */
  start(): Promise<void>;
  /**
   * Writes `records` (one Kafka partition's, in offset order) and returns one result per
   * record, in the same order. `offsets`, when given, must be stored in the same atomic
   * step as the data (sinks with `storesOffsets`).
   */
  write(records: SinkRecord[], offsets?: OffsetsToStore): Promise<WriteResult[]>;
  /**
   * How the pipeline cuts a partition's records into `write` calls ("units") and how many
   * it runs at once per partition. Absent: units of delivery.maxBatchEvents, one at a time,
   * as a sink that stores offsets with its data needs. A sink that answers per request
   * (HTTP) asks for small units, many at once: each unit is retried on its own, so a slow
   * or failing request holds back only its row, not the partition. The pipeline keeps a
   * row's events in order across units either way.
   */
  readonly units?: { size: number; inFlight: number };
  /** True when the sink stores consumed offsets with its data; the consumer seeks to them on assignment. */
  readonly storesOffsets: boolean;
  /** The offsets the sink holds for `group`, as `topic:partition` -> next offset. */
  storedOffsets?(group: string): Promise<Record<string, string>>;
  /** Generation markers per `topic:partition` for `group` (sinks that can lose their state: delivery/sink-state.ts). */
  stateMarkers?(group: string): Promise<Record<string, string>>;
  /** Sets those markers (`topic:partition` -> generation). */
  markState?(group: string, markers: Record<string, string>): Promise<void>;
  /**
   * Tells `listener` when the sink found its stored history gone and recreated it empty (a
   * BigQuery table dropped): the pipeline replays what the changes topic still holds.
   * `atStart`: found missing when the sink started (the group's offsets say if it had history).
   */
  onHistoryLost?(listener: (what: string, atStart: boolean) => void): void;
  /** Cheap round trip for `status` and /ready. */
  healthCheck(): Promise<void>;
  stop(): Promise<void>;
}

/** The one typed configuration every subcommand reads. Defaults: ./defaults.ts. */

import type { SinksConfig } from '../sinks/registry.js';

export interface RetryPolicy {
  /** Retries after the first attempt; 'forever' only makes sense for Kafka. */
  retries: number | 'forever';
  initialDelayMs: number;
  maxDelayMs: number;
}

export interface BreakerPolicy {
  /** Consecutive failed deliveries (after retries) that open the circuit. */
  consecutiveFailures: number;
  /** How long the circuit stays open before one half-open probe. */
  halfOpenAfterMs: number;
}

export interface PostgresConfig {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Fully qualified tables to capture (`schema.table`); empty means every table. */
  tables: string[];
  /** Logical slot and publication names; empty means derived from pipeline.id. */
  slot: string;
  publication: string;
  connectTimeoutMs: number;
}

export interface KafkaConfig {
  brokers: string[];
  clientId: string;
  partitions: number;
  replicationFactor: number;
  transactionTimeoutMs: number;
  /**
   * Largest event value written to the changes topic (bytes). The topics are created with a
   * matching max.message.bytes; a row whose event is bigger becomes an oversize marker
   * (see src/core/event/oversize.ts) rather than a record Kafka would refuse.
   */
  maxRecordBytes: number;
  retry: RetryPolicy;
}

// Each sink declares its own settings in its folder; `sinks` is derived from the registry.
export type { RedisSinkConfig } from '../sinks/redis/config.js';
export type { BigQuerySinkConfig } from '../sinks/bigquery/config.js';
export type { HttpSinkConfig } from '../sinks/http/config.js';

export interface CaptureConfig {
  /** A Kafka transaction is committed when it holds this many changes... */
  maxBatchEvents: number;
  /** ...or this many bytes of events... */
  maxBatchBytes: number;
  /** ...or when its first change has waited this long (at a transaction boundary). */
  lingerMs: number;
  /** How often the slot lag is measured for metrics and status. */
  slotLagIntervalMs: number;
}

export interface DeliveryConfig {
  /** Most records handed to a sink in one write. */
  maxBatchEvents: number;
  /** How often consumer lag (queue_depth) and DLQ depth are measured. */
  lagIntervalMs: number;
  /** A deliverer silent this long is out of its group and its partitions move (broker minimum: 6000). */
  sessionTimeoutMs: number;
}

/** Per-table enrichment, keyed `schema.table`. Applied in this order: drop, rename, mask, add. */
export interface TableEnrichment {
  drop: string[];
  rename: Record<string, string>;
  /** Replaced by a keyed hash (HMAC-SHA256 with enrich.maskKey): joinable, not readable. */
  mask: string[];
  /** Static fields added to every row of the table. */
  add: Record<string, string | number | boolean | null>;
}

export interface EnrichConfig {
  tables: Record<string, TableEnrichment>;
  maskKey: string;
  maskKeyFile: string;
  /** Add `_streamctl: { processed_at, pipeline }` to each row written. */
  stamp: boolean;
}

export interface ValidationConfig {
  /** `schema.table` -> JSON Schema file that the row (`after`) must satisfy. */
  tables: Record<string, string>;
}

export interface Config {
  pipeline: { id: string; topicPrefix: string };
  capture: CaptureConfig;
  delivery: DeliveryConfig;
  enrich: EnrichConfig;
  validation: ValidationConfig;
  postgres: PostgresConfig;
  kafka: KafkaConfig;
  sinks: SinksConfig;
  metrics: { host: string; port: number };
  health: {
    /** Capture or a sink with work and no progress for this long is stuck: /ready false, `status` exit 3. */
    stuckAfterSeconds: number;
    /** How often `stream` probes the parts it uses; one that does not answer makes /ready false, naming it. */
    checkIntervalSeconds: number;
    /** `status` warns about an inactive slot retaining more WAL than this. */
    slotWalWarnBytes: number;
  };
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
}

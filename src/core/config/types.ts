/** The one typed configuration every subcommand reads. Defaults: ./defaults.ts. */

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

export interface RedisSinkConfig {
  enabled: boolean;
  host: string;
  port: number;
  password: string;
  db: number;
  keyPrefix: string;
  /** The read model came back without its state (flushed, restarted empty): rebuild it on its own, or stop and say what to run. */
  rebuild: 'auto' | 'manual';
  retry: RetryPolicy;
  breaker: BreakerPolicy;
}

export interface BigQuerySinkConfig {
  enabled: boolean;
  projectId: string;
  dataset: string;
  table: string;
  location: string;
  /** Set for an emulator; empty means Google's endpoint. */
  apiEndpoint: string;
  /** Service-account JSON, inline or as a file; both empty means application default credentials. */
  credentialsJson: string;
  credentialsFile: string;
  /** View showing each event once; view showing the latest state of each row. */
  viewOnce: string;
  viewLatest: string;
  /** Rows per streaming insert, and longest wait to fill one. */
  batchSize: number;
  flushMs: number;
  retry: RetryPolicy;
  breaker: BreakerPolicy;
}

export interface HttpSinkConfig {
  enabled: boolean;
  url: string;
  /** Optional GET endpoint for `status`; empty means a HEAD of `url`. */
  healthUrl: string;
  hmacKey: string;
  hmacKeyFile: string;
  timeoutMs: number;
  batchSize: number;
  retry: RetryPolicy;
  breaker: BreakerPolicy;
}

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
  sinks: { redis: RedisSinkConfig; bigquery: BigQuerySinkConfig; http: HttpSinkConfig };
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

/** Deep partial: what a YAML file or the environment may set. */
export type ConfigInput = { [K in keyof Config]?: DeepPartial<Config[K]> };
export type DeepPartial<T> = T extends (infer U)[] ? U[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

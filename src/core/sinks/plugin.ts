import type { Schema } from '../schema-kit.js';
import type { BreakerPolicy, RetryPolicy } from '../config/types.js';
import type { Logger } from '../logger.js';
import type { Sink } from './contract.js';

/** Settings every sink has, whatever else it declares. */
export interface SinkConfigBase {
  enabled: boolean;
  retry: RetryPolicy;
  breaker: BreakerPolicy;
}

/** One cheap round trip to the sink's server, as `status` shows it. */
export interface SinkHealth {
  rtt_ms: number;
  detail: Record<string, unknown>;
}

/**
 * Everything the rest of streamctl knows about one sink, declared in the sink's own folder
 * (src/core/sinks/<name>/index.ts) and listed once in ./registry.ts. The config schema,
 * defaults, environment variables, secrets, `status` components, the deliverer's and
 * replay-dlq's sink lists and the lag per sink all derive from that list, so adding a
 * sink is one folder and one registry line.
 */
export interface SinkPlugin<N extends string = string, C extends SinkConfigBase = SinkConfigBase> {
  readonly name: N;
  /** JSON Schema of `sinks.<name>` (with enabled, retry and breaker); see src/core/schema-kit.ts. */
  readonly schema: Schema;
  /** Its defaults: the local stack of `scripts/stack`. */
  defaults(): C;
  /** Settings that name files: a relative path in a config file is relative to that file. */
  readonly fileSettings?: readonly string[];
  /** Settings that hold secrets: never printed, in logs, errors or `--json`. */
  readonly secretSettings?: readonly string[];
  /** Rules across this sink's fields that a JSON Schema says badly, each `sinks.<name>.<setting>: why`. */
  problems?(config: C): string[];
  /** Secrets the sink reads from files, so the commands can redact them too. Throws when a file cannot be read. */
  fileSecrets?(config: C): string[];
  /** Where `status` says the sink is reached (never with credentials). */
  endpoint(config: C): string;
  /** One cheap round trip for `status`; throws (with the cause) when the server does not answer. */
  check(config: C, options: { logger: Logger; timeoutMs: number }): Promise<SinkHealth>;
  /**
   * The sink as `stream` and `replay-dlq` deliver to it. A promise so that a sink's client
   * library (ioredis, @google-cloud/bigquery and google-auth-library) is loaded by its
   * `import()` only in a process that delivers to it or probes it: every command reads the
   * registry through the configuration, and a capture-only `stream` started ~0.15 s of CPU
   * sooner without them (bench:capture times capture from process start).
   */
  build(config: C, context: { logger: Logger; pipelineId: string }): Promise<Sink>;
}

/** A plugin of any sink, as the lists built from the registry hold it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySinkPlugin = SinkPlugin<string, any>;

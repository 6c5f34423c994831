/**
 * JSON Schema of the configuration, checked with ajv (allErrors, so every mistake is
 * reported at once). `errorMessage` (ajv-errors) gives each leaf a message an operator
 * can act on; the path in front of it comes from the error's location.
 */

import { bool, hostName, intRange, millis, nonEmpty, object, port, retry, str, type Schema } from '../schema-kit.js';
import type { AnySinkPlugin } from '../sinks/plugin.js';
import { SINK_PLUGINS } from '../sinks/registry.js';

// PostgreSQL folds unquoted names to lower case and slot names allow only [a-z0-9_].
const pgName: Schema = {
  type: 'string',
  pattern: '^([a-z_][a-z0-9_]{0,62})?$',
  errorMessage: 'must be lower-case letters, digits and _ (at most 63), or empty to derive it from pipeline.id',
};

/** The whole schema, with one `sinks.<name>` part per registered sink (src/core/sinks/registry.ts). */
export const configSchema = (plugins: readonly AnySinkPlugin[] = SINK_PLUGINS): Schema => object({
  pipeline: object({
    id: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9_]{0,39}$',
      errorMessage: 'must be 1-40 lower-case letters, digits or _ (it names the slot and the Kafka transactional id)',
    },
    topicPrefix: {
      type: 'string',
      pattern: '^[a-zA-Z0-9._-]{1,200}$',
      errorMessage: 'must be 1-200 characters of a-z A-Z 0-9 . _ - (a Kafka topic name prefix)',
    },
  }),
  capture: object({
    maxBatchEvents: intRange(1, 1_000_000),
    maxBatchBytes: intRange(1024, 900 * 1024 * 1024),
    lingerMs: millis(0, 60_000),
    slotLagIntervalMs: millis(100, 3_600_000),
  }),
  delivery: object({
    maxBatchEvents: intRange(1, 100_000),
    lagIntervalMs: millis(100, 3_600_000),
    sessionTimeoutMs: millis(6000, 1_800_000),
  }),
  enrich: object({
    tables: {
      type: 'object',
      propertyNames: { pattern: '^[^.\\s]+\\.[^.\\s]+$', errorMessage: "table names must be 'schema.table'" },
      additionalProperties: object(
        {
          drop: { type: 'array', items: { type: 'string' }, errorMessage: 'must be a list of column names' },
          rename: { type: 'object', additionalProperties: { type: 'string' }, errorMessage: 'must map old column names to new ones' },
          mask: { type: 'array', items: { type: 'string' }, errorMessage: 'must be a list of column names' },
          add: {
            type: 'object',
            additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
            errorMessage: 'must map field names to plain values',
          },
        },
        [],
      ),
    },
    maskKey: str(),
    maskKeyFile: str(),
    stamp: bool,
  }),
  validation: object({
    tables: {
      type: 'object',
      propertyNames: { pattern: '^[^.\\s]+\\.[^.\\s]+$', errorMessage: "table names must be 'schema.table'" },
      additionalProperties: { type: 'string', minLength: 1, errorMessage: 'must be the path of a JSON Schema file' },
    },
  }),
  postgres: object({
    host: hostName,
    port,
    user: nonEmpty('user name'),
    password: str(),
    database: nonEmpty('database name'),
    tables: {
      type: 'array',
      items: {
        type: 'string',
        pattern: '^[^.\\s]+\\.[^.\\s]+$',
        errorMessage: "must be 'schema.table'",
      },
      errorMessage: { type: "must be a list of 'schema.table' names" },
    },
    slot: pgName,
    publication: pgName,
    connectTimeoutMs: millis(100, 600_000),
  }),
  kafka: object({
    brokers: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', pattern: '^[^\\s:/]+:[0-9]{1,5}$', errorMessage: "must be 'host:port'" },
      errorMessage: { type: "must be a list of 'host:port'", minItems: "must name at least one broker ('host:port')" },
    },
    clientId: nonEmpty('client id'),
    partitions: intRange(1, 10_000),
    replicationFactor: intRange(1, 32),
    transactionTimeoutMs: millis(1000, 900_000),
    // Up to 512 MiB: the broker's socket.request.max.bytes (100 MiB by default) must allow it too.
    maxRecordBytes: intRange(64 * 1024, 512 * 1024 * 1024),
    retry: retry(true),
  }),
  sinks: object(Object.fromEntries(plugins.map((plugin) => [plugin.name, plugin.schema]))),
  metrics: object({ host: hostName, port: intRange(0, 65535) }),
  health: object({ stuckAfterSeconds: intRange(1, 86_400), checkIntervalSeconds: intRange(1, 3600), slotWalWarnBytes: intRange(1024, Number.MAX_SAFE_INTEGER) }),
  log: object({
    level: { enum: ['debug', 'info', 'warn', 'error'], errorMessage: 'must be one of debug, info, warn, error' },
  }),
});

export const CONFIG_SCHEMA: Schema = configSchema();

/** Every leaf path of the schema with its JSON type: the environment overrides are derived from it. */
export function schemaLeaves(schema: Schema = CONFIG_SCHEMA, prefix: string[] = []): Array<{ path: string[]; type: string }> {
  const properties = schema['properties'] as Record<string, Schema> | undefined;
  if (schema['type'] === 'object' && properties) {
    return Object.entries(properties).flatMap(([key, child]) => schemaLeaves(child, [...prefix, key]));
  }
  const type = typeof schema['type'] === 'string' ? (schema['type'] as string) : schema['enum'] ? 'string' : 'integer-or-string';
  return [{ path: prefix, type }];
}

/**
 * JSON Schema of the configuration, checked with ajv (allErrors, so every mistake is
 * reported at once). `errorMessage` (ajv-errors) gives each leaf a message an operator
 * can act on; the path in front of it comes from the error's location.
 */

type Schema = Record<string, unknown>;

const str = (errorMessage = 'must be a string'): Schema => ({ type: 'string', errorMessage });
const nonEmpty = (what: string): Schema => ({ type: 'string', minLength: 1, errorMessage: `must be a non-empty ${what}` });
const bool: Schema = { type: 'boolean', errorMessage: 'must be true or false' };
const intRange = (min: number, max: number): Schema => ({
  type: 'integer',
  minimum: min,
  maximum: max,
  errorMessage: `must be an integer ${min}-${max}`,
});
const port = intRange(1, 65535);
const millis = (min: number, max: number): Schema => ({
  type: 'integer',
  minimum: min,
  maximum: max,
  errorMessage: `must be a whole number of milliseconds ${min}-${max}`,
});

const object = (properties: Record<string, Schema>, required = Object.keys(properties)): Schema => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});

const breaker = (): Schema =>
  object({
    consecutiveFailures: intRange(1, 10_000),
    halfOpenAfterMs: millis(100, 86_400_000),
  });

const retry = (allowForever: boolean): Schema =>
  object({
    retries: allowForever
      ? {
          anyOf: [{ type: 'integer', minimum: 0, maximum: 1000 }, { const: 'forever' }],
          errorMessage: "must be an integer 0-1000 or 'forever'",
        }
      : intRange(0, 1000),
    initialDelayMs: millis(1, 3_600_000),
    maxDelayMs: millis(1, 3_600_000),
  });

const hostName: Schema = {
  type: 'string',
  minLength: 1,
  pattern: '^[^\\s/]+$',
  errorMessage: 'must be a host name or address (no scheme, no spaces)',
};
const url: Schema = { type: 'string', pattern: '^https?://[^\\s]+$', errorMessage: 'must be an http:// or https:// URL' };
const urlOrEmpty: Schema = {
  type: 'string',
  pattern: '^(https?://[^\\s]+)?$',
  errorMessage: 'must be an http:// or https:// URL, or empty',
};
// PostgreSQL folds unquoted names to lower case and slot names allow only [a-z0-9_].
const pgName: Schema = {
  type: 'string',
  pattern: '^([a-z_][a-z0-9_]{0,62})?$',
  errorMessage: 'must be lower-case letters, digits and _ (at most 63), or empty to derive it from pipeline.id',
};

export const CONFIG_SCHEMA: Schema = object({
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
  sinks: object({
    redis: object({
      enabled: bool,
      host: hostName,
      port,
      password: str(),
      db: intRange(0, 15),
      keyPrefix: str(),
      rebuild: { enum: ['auto', 'manual'], errorMessage: 'must be auto or manual' },
      retry: retry(false),
      breaker: breaker(),
    }),
    bigquery: object({
      enabled: bool,
      projectId: {
        type: 'string',
        pattern: '^[a-z][a-z0-9-]{4,61}[a-z0-9]$',
        errorMessage: 'must be a Google Cloud project id (6-30 lower-case letters, digits, -)',
      },
      dataset: { type: 'string', pattern: '^[A-Za-z0-9_]{1,1024}$', errorMessage: 'must be letters, digits and _' },
      table: { type: 'string', pattern: '^[A-Za-z0-9_]{1,1024}$', errorMessage: 'must be letters, digits and _' },
      location: nonEmpty('location (for example US or EU)'),
      apiEndpoint: urlOrEmpty,
      credentialsJson: str(),
      credentialsFile: str(),
      viewOnce: { type: 'string', pattern: '^[A-Za-z0-9_]{1,1024}$', errorMessage: 'must be letters, digits and _' },
      viewLatest: { type: 'string', pattern: '^[A-Za-z0-9_]{1,1024}$', errorMessage: 'must be letters, digits and _' },
      batchSize: intRange(1, 10_000),
      flushMs: millis(1, 600_000),
      retry: retry(false),
      breaker: breaker(),
    }),
    http: object({
      enabled: bool,
      url,
      healthUrl: urlOrEmpty,
      hmacKey: str(),
      hmacKeyFile: str(),
      timeoutMs: millis(100, 600_000),
      batchSize: intRange(1, 10_000),
      retry: retry(false),
      breaker: breaker(),
    }),
  }),
  metrics: object({ host: hostName, port: intRange(0, 65535) }),
  health: object({ stuckAfterSeconds: intRange(1, 86_400), checkIntervalSeconds: intRange(1, 3600), slotWalWarnBytes: intRange(1024, Number.MAX_SAFE_INTEGER) }),
  log: object({
    level: { enum: ['debug', 'info', 'warn', 'error'], errorMessage: 'must be one of debug, info, warn, error' },
  }),
});

/** Every leaf path of the schema with its JSON type: the environment overrides are derived from it. */
export function schemaLeaves(schema: Schema = CONFIG_SCHEMA, prefix: string[] = []): Array<{ path: string[]; type: string }> {
  const properties = schema['properties'] as Record<string, Schema> | undefined;
  if (schema['type'] === 'object' && properties) {
    return Object.entries(properties).flatMap(([key, child]) => schemaLeaves(child, [...prefix, key]));
  }
  const type = typeof schema['type'] === 'string' ? (schema['type'] as string) : schema['enum'] ? 'string' : 'integer-or-string';
  return [{ path: prefix, type }];
}

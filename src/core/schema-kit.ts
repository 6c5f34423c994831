/**
 * Building blocks of the configuration's JSON Schema, shared by ./schema.ts and each sink's
 * own part (src/core/sinks/<name>/config.ts). `errorMessage` (ajv-errors) gives each leaf a
 * message an operator can act on.
 */

export type Schema = Record<string, unknown>;

export const str = (errorMessage = 'must be a string'): Schema => ({ type: 'string', errorMessage });
export const nonEmpty = (what: string): Schema => ({ type: 'string', minLength: 1, errorMessage: `must be a non-empty ${what}` });
export const bool: Schema = { type: 'boolean', errorMessage: 'must be true or false' };
export const intRange = (min: number, max: number): Schema => ({
  type: 'integer',
  minimum: min,
  maximum: max,
  errorMessage: `must be an integer ${min}-${max}`,
});
export const port = intRange(1, 65535);
export const millis = (min: number, max: number): Schema => ({
  type: 'integer',
  minimum: min,
  maximum: max,
  errorMessage: `must be a whole number of milliseconds ${min}-${max}`,
});

export const object = (properties: Record<string, Schema>, required = Object.keys(properties)): Schema => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});

export const breaker = (): Schema =>
  object({
    consecutiveFailures: intRange(1, 10_000),
    halfOpenAfterMs: millis(100, 86_400_000),
  });

export const retry = (allowForever: boolean): Schema =>
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

export const hostName: Schema = {
  type: 'string',
  minLength: 1,
  pattern: '^[^\\s/]+$',
  errorMessage: 'must be a host name or address (no scheme, no spaces)',
};
export const url: Schema = { type: 'string', pattern: '^https?://[^\\s]+$', errorMessage: 'must be an http:// or https:// URL' };
export const urlOrEmpty: Schema = {
  type: 'string',
  pattern: '^(https?://[^\\s]+)?$',
  errorMessage: 'must be an http:// or https:// URL, or empty',
};

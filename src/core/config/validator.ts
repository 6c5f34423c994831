import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Ajv, ValidateFunction } from 'ajv';
import { makeAjv } from '../json-schema.js';
import type { Schema } from '../schema-kit.js';

/**
 * The configuration's validator. Compiling the schema with ajv took 180-220 ms of every
 * command's start (`--help` included: it was compiled when load.ts was imported), a sixth of
 * the 1.2 s `streamctl --help` took on the 12-04 machine. The build writes the
 * same validator as code (ajv's standalone output, scripts/compile-config-validator.ts) next
 * to this module; it is used when it was made from the schema this build holds (its hash),
 * and the schema is compiled at run time otherwise (a stale or missing file, another sink
 * list in tests), so a build step left out costs time, never correctness.
 */

/** File name of the generated validator, beside this module in dist/. */
export const PRECOMPILED_FILE = 'config-validator.generated.cjs';

/** What ajv is set up with for the configuration (ajv-errors for its `errorMessage`s): the same for both forms. */
export const ajvForConfig = (source = false): Ajv => makeAjv({ errorMessages: true, source });

export const schemaHash = (schema: Schema): string => createHash('sha256').update(JSON.stringify(schema)).digest('hex');

export interface ConfigValidator<T> {
  validate: ValidateFunction<T>;
  /** 'precompiled': the build's generated code; 'compiled': ajv.compile at run time. */
  origin: 'precompiled' | 'compiled';
}

/** The validator in `file` when it was generated from `schema`; null when absent or made from another schema. */
export function loadPrecompiled<T>(file: string, schema: Schema): ValidateFunction<T> | null {
  if (!existsSync(file)) return null;
  const loaded = createRequire(import.meta.url)(file) as ValidateFunction<T> & { schemaHash?: string };
  return typeof loaded === 'function' && loaded.schemaHash === schemaHash(schema) ? loaded : null;
}

const compiled = new WeakMap<Schema, ConfigValidator<unknown>>();

/** The validator of `schema`, made once per schema object: the build's when it matches, compiled otherwise. */
export function configValidator<T>(schema: Schema, file = new URL(PRECOMPILED_FILE, import.meta.url).pathname): ConfigValidator<T> {
  let validator = compiled.get(schema) as ConfigValidator<T> | undefined;
  if (!validator) {
    const precompiled = loadPrecompiled<T>(file, schema);
    validator = precompiled ? { validate: precompiled, origin: 'precompiled' } : { validate: ajvForConfig().compile<T>(schema), origin: 'compiled' };
    compiled.set(schema, validator);
  }
  return validator;
}

import { Ajv, type Options } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import ajvErrors from 'ajv-errors';
import addFormatsModule from 'ajv-formats';

/**
 * The one ajv set-up for every JSON Schema streamctl checks (its configuration, the event
 * envelope, the operators' row schemas): every error at once (allErrors), so a person
 * fixes everything in one go; strict off and union types allowed, since a row schema is
 * the operator's and may use keywords or type lists strict mode refuses.
 *
 * - `draft`: the value of a schema's `$schema`: 2020-12 and 2019-09 get their own ajv, any
 *   other draft-07 (ajv's default).
 * - `formats`: ajv-formats (date-time, uuid, ...), for data schemas.
 * - `errorMessages`: ajv-errors, for schemas that carry an `errorMessage` per leaf (the config).
 */
export function makeAjv(options: { draft?: string; formats?: boolean; errorMessages?: boolean } = {}): Ajv {
  const settings: Options = { allErrors: true, strict: false, allowUnionTypes: true };
  const draft = options.draft ?? '';
  const ajv = draft.includes('2020-12') ? new Ajv2020(settings) : draft.includes('2019-09') ? new Ajv2019(settings) : new Ajv(settings);
  if (options.formats) addFormatsModule.default(ajv);
  if (options.errorMessages) ajvErrors.default(ajv);
  return ajv;
}

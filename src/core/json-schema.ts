import { createRequire } from 'node:module';
import type { Ajv, Options } from 'ajv';
import type { Ajv2019 } from 'ajv/dist/2019.js';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import type ajvErrorsModule from 'ajv-errors';
import type addFormatsModule from 'ajv-formats';

/**
 * ajv and its plug-ins are loaded on the first makeAjv call, not when this module is: a
 * process that compiles no schema at run time (`stream --role capture`, `--help`: the
 * configuration is checked by the build's precompiled validator, config/validator.ts) did
 * not need the 37 ms their 50-odd files took to load on the 12-04 machine. All four are CommonJS, so a plain
 * require loads them synchronously, as makeAjv's callers expect.
 */
const require = createRequire(import.meta.url);
interface AjvModules {
  Ajv: typeof Ajv;
  Ajv2019: typeof Ajv2019;
  Ajv2020: typeof Ajv2020;
  ajvErrors: typeof ajvErrorsModule;
  addFormats: typeof addFormatsModule;
}
let modules: AjvModules | null = null;
function ajvModules(): AjvModules {
  return (modules ??= {
    Ajv: (require('ajv') as { Ajv: typeof Ajv }).Ajv,
    Ajv2019: (require('ajv/dist/2019.js') as { Ajv2019: typeof Ajv2019 }).Ajv2019,
    Ajv2020: (require('ajv/dist/2020.js') as { Ajv2020: typeof Ajv2020 }).Ajv2020,
    ajvErrors: require('ajv-errors') as typeof ajvErrorsModule,
    addFormats: require('ajv-formats') as typeof addFormatsModule,
  });
}

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
 * - `source`: keep each validator's code, for ajv's standalone output (config/validator.ts).
 */
export function makeAjv(options: { draft?: string; formats?: boolean; errorMessages?: boolean; source?: boolean } = {}): Ajv {
  const settings: Options = { allErrors: true, strict: false, allowUnionTypes: true, ...(options.source ? { code: { source: true } } : {}) };
  const draft = options.draft ?? '';
  const { Ajv, Ajv2019, Ajv2020, ajvErrors, addFormats } = ajvModules();
  const ajv = draft.includes('2020-12') ? new Ajv2020(settings) : draft.includes('2019-09') ? new Ajv2019(settings) : new Ajv(settings);
  if (options.formats) addFormats.default(ajv);
  if (options.errorMessages) ajvErrors.default(ajv);
  return ajv;
}

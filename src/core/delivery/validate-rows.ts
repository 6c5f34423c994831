import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { makeAjv } from '../json-schema.js';
import type { ChangeEvent } from '../event/envelope.js';

export type RowValidator = (event: ChangeEvent) => string[];

/**
 * Row validation of the delivery pipeline: `schema.table` -> a JSON Schema file that the
 * row (`after`) must satisfy (validation.tables). Every file is read and compiled once, at
 * construction; a file that cannot be read, is not JSON or is not a valid schema throws
 * then, naming the table and the file. The validator returns every problem of a row
 * (ajv allErrors), empty when the row is fine, when its table has no schema, and for
 * deletes and truncates (they carry no row).
 *
 * The schema's `$schema` picks the draft: 2020-12, 2019-09, otherwise draft-07. Each file
 * gets its own ajv instance, so two files may use the same `$id`.
 */
export function makeRowValidator(tables: Record<string, string>): RowValidator {
  const compiled = new Map<string, ValidateFunction>();
  const byTable = new Map<string, ValidateFunction>();
  for (const [table, file] of Object.entries(tables)) {
    const resolved = path.resolve(file);
    let check = compiled.get(resolved);
    if (!check) {
      check = compileFile(table, file);
      compiled.set(resolved, check);
    }
    byTable.set(table, check);
  }

  return (event) => {
    if (event.op === 'delete' || event.op === 'truncate') return [];
    const check = byTable.get(`${event.schema}.${event.table}`);
    if (!check) return [];
    if (event.after === null) return [`after: a ${event.op} must carry the row`];
    if (check(event.after)) return [];
    return [...new Set((check.errors ?? []).filter((e) => e.keyword !== 'if').map(describe))];
  };
}

function compileFile(table: string, file: string): ValidateFunction {
  const where = `validation.tables.${table}: ${file}`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new Error(`${where}: cannot read the JSON Schema (${code ?? (err as Error).message})`);
  }
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (err) {
    throw new Error(`${where}: not JSON (${(err as Error).message})`);
  }
  if ((typeof schema !== 'object' || schema === null || Array.isArray(schema)) && typeof schema !== 'boolean') {
    throw new Error(`${where}: not a JSON Schema (must be an object)`);
  }
  const draft = typeof schema === 'object' ? String((schema as { $schema?: unknown }).$schema ?? '') : '';
  const ajv = makeAjv({ draft, formats: true });
  try {
    return ajv.compile(schema as object | boolean);
  } catch (err) {
    throw new Error(`${where}: not a valid JSON Schema (${(err as Error).message})`);
  }
}

function describe(e: ErrorObject): string {
  const at = `after${e.instancePath}`;
  const extra =
    e.keyword === 'additionalProperties'
      ? ` '${String((e.params as { additionalProperty?: unknown }).additionalProperty)}'`
      : '';
  return `${at}: ${e.message ?? 'invalid'}${extra}`;
}

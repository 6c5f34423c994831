import { readFileSync } from 'node:fs';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { makeAjv } from '../json-schema.js';
import type { ChangeEvent } from './envelope.js';

const SCHEMA_URL = new URL('../../../../schemas/event.v1.schema.json', import.meta.url);

/** The versioned envelope schema, read from schemas/ so the file in the repo is the contract. */
export const EVENT_SCHEMA_V1: Record<string, unknown> = JSON.parse(readFileSync(SCHEMA_URL, 'utf8'));

/**
 * Compiled on first use, not on import: every process loads this module (the delivery code
 * does), and the capture role never validates an event, so it should not pay the compile
 * at each start (about 50 ms of CPU here, which bench:capture counts).
 */
let compiled: ValidateFunction<ChangeEvent> | null = null;
const check = (candidate: unknown): candidate is ChangeEvent => (compiled ??= makeAjv({ formats: true }).compile<ChangeEvent>(EVENT_SCHEMA_V1))(candidate);

export type EventValidation = { ok: true; event: ChangeEvent } | { ok: false; errors: string[] };

const describe = (e: ErrorObject): string => `${e.instancePath || '(event)'}: ${e.message ?? 'invalid'}`;

/** Validates anything (parsed JSON from Kafka, a decoded change) against the v1 envelope. */
export function validateEvent(candidate: unknown): EventValidation {
  if (check(candidate)) return { ok: true, event: candidate };
  // 'if' errors only say "must match then schema"; the specific errors beside them say why.
  const errors = (compiled!.errors ?? []).filter((e) => e.keyword !== 'if').map(describe);
  return { ok: false, errors: [...new Set(errors)] };
}

import { createHmac } from 'node:crypto';
import type { EnrichConfig, TableEnrichment } from '../config/types.js';
import type { ChangeEvent, Row } from '../event/envelope.js';
import { canonicalJson } from '../event/identity.js';
import { setOwn } from '../event/own-member.js';

export const MASK_PREFIX = 'hmac-sha256:';
export const STAMP_FIELD = '_streamctl';

export type Enricher = (event: ChangeEvent) => ChangeEvent;

/** An event the configured enrichment cannot be applied to; it belongs in the DLQ. */
export class EnrichError extends Error {
  override readonly name = 'EnrichError';
}

/**
 * A masked value: HMAC-SHA256 (keyed with enrich.maskKey) of the value's canonical JSON.
 * The same value always gives the same mask, so masked columns still join and group, but
 * without the key nobody can read it back or test a guess. Null stays null.
 */
export function maskValue(value: unknown, maskKey: string): unknown {
  if (value === null || value === undefined) return value;
  return MASK_PREFIX + createHmac('sha256', maskKey).update(canonicalJson(value)).digest('hex');
}

interface TablePlan {
  name: string;
  drop: Set<string>;
  rename: Map<string, string>;
  /** Mask names, in the columns' final (renamed) names. */
  mask: Set<string>;
  add: [string, TableEnrichment['add'][string]][];
}

/**
 * The enrichment step of the delivery pipeline: pure, no I/O. For the event's
 * `schema.table`, when configured, in this order: drop columns, rename columns, mask
 * columns, add static fields. Then, when `config.stamp`, `_streamctl: { processed_at,
 * pipeline }` is added to `after`.
 *
 * - drop, rename and mask apply to `after`, `before` and `key` alike, so the record key a
 *   sink derives from `key` stays stable and joins with the rows. Static fields and the
 *   stamp go to rows only (`add` to `after` and `before`; the stamp to `after`), never to key.
 * - A key column listed in `drop` is masked in `key` rather than removed: removed, every
 *   row would share one key (a sink would fold them together); left alone, the key would
 *   show what drop hid. That needs enrich.maskKey; without it the event is refused (EnrichError).
 * - A mask entry may name a column by its source or its renamed name: either way the value
 *   is masked (masking the wrong name would leak it). Drop names are source names.
 * - A renamed column takes its new name even when the row already has a column of that
 *   name; `add` overwrites a column of the same name.
 * - `unchanged` (TOASTed columns not sent) is renamed and filtered like the rows.
 * - The input is never mutated; a new event is returned.
 *
 * Throws at construction when the configuration cannot work (mask without a key, two
 * columns renamed to one name).
 */
export function makeEnricher(
  config: EnrichConfig,
  maskKey: string,
  pipelineId: string,
  now: () => Date = () => new Date(),
): Enricher {
  const plans = new Map<string, TablePlan>();
  for (const [name, table] of Object.entries(config.tables)) {
    const rename = new Map(Object.entries(table.rename ?? {}));
    const targets = new Map<string, string>();
    for (const [from, to] of rename) {
      const other = targets.get(to);
      if (other !== undefined) {
        throw new Error(`enrich.tables.${name}.rename: '${other}' and '${from}' are both renamed to '${to}'`);
      }
      targets.set(to, from);
    }
    const mask = new Set<string>();
    for (const column of table.mask ?? []) {
      mask.add(column);
      const renamed = rename.get(column);
      if (renamed !== undefined) mask.add(renamed);
    }
    if (mask.size > 0 && !maskKey) {
      throw new Error(`enrich.tables.${name}.mask: masking needs a key: set enrich.maskKey or enrich.maskKeyFile`);
    }
    plans.set(name, { name, drop: new Set(table.drop ?? []), rename, mask, add: Object.entries(table.add ?? {}) });
  }

  return (event) => {
    const plan = plans.get(`${event.schema}.${event.table}`);
    const next: ChangeEvent = { ...event, source: { ...event.source } };
    if (plan) {
      next.key = event.key === null ? null : transformKey(event.key, plan, maskKey);
      // The other key of a primary-key change must match the rows' keys as the sinks store them.
      if (event.moved_to) next.moved_to = transformKey(event.moved_to, plan, maskKey);
      if (event.moved_from) next.moved_from = transformKey(event.moved_from, plan, maskKey);
      next.before = event.before === null ? null : transformRow(event.before, plan, maskKey);
      next.after = event.after === null ? null : transformRow(event.after, plan, maskKey);
      if (event.unchanged !== undefined) {
        next.unchanged = event.unchanged.filter((c) => !plan.drop.has(c)).map((c) => plan.rename.get(c) ?? c);
      }
    } else {
      next.key = copy(event.key);
      next.before = copy(event.before);
      next.after = copy(event.after);
      if (event.unchanged !== undefined) next.unchanged = [...event.unchanged];
    }
    if (config.stamp && next.after !== null) {
      next.after = { ...next.after, [STAMP_FIELD]: { processed_at: now().toISOString(), pipeline: pipelineId } };
    }
    return next;
  };
}

const copy = (row: Row | null): Row | null => (row === null ? null : { ...row });

/** drop, rename, mask (column values themselves are not copied: they are never changed in place). */
function reshape(row: Row, plan: TablePlan, maskKey: string, dropped: (column: string, value: unknown) => [string, unknown][]): Row {
  const out: Row = {};
  const renamedInto = new Set<string>();
  for (const [column, value] of Object.entries(row)) {
    if (plan.drop.has(column)) {
      for (const [k, v] of dropped(column, value)) setOwn(out, k, v);
      continue;
    }
    const name = plan.rename.get(column) ?? column;
    // A renamed column wins over a column that already had its new name.
    if (renamedInto.has(name) && !plan.rename.has(column)) continue;
    if (plan.rename.has(column)) renamedInto.add(name);
    setOwn(out, name, plan.mask.has(name) ? maskValue(value, maskKey) : value);
  }
  return out;
}

function transformRow(row: Row, plan: TablePlan, maskKey: string): Row {
  const out = reshape(row, plan, maskKey, () => []);
  for (const [field, value] of plan.add) setOwn(out, field, value);
  return out;
}

function transformKey(key: Row, plan: TablePlan, maskKey: string): Row {
  return reshape(key, plan, maskKey, (column, value) => {
    if (!maskKey) {
      throw new EnrichError(
        `enrich.tables.${plan.name}.drop: '${column}' is a key column: it is masked in the key rather than removed, which needs enrich.maskKey or enrich.maskKeyFile`,
      );
    }
    return [[column, maskValue(value, maskKey)]];
  });
}

import type { BigQuery } from '@google-cloud/bigquery';
import type { Redis } from 'ioredis';
import { eventVersion } from '../event/version.js';
import type { SinkName } from '../sinks/contract.js';
import type { ChangeEvent } from '../event/envelope.js';
import { canonicalJson } from '../event/identity.js';
import { onceMoreOnReset } from '../sinks/bigquery/errors.js';
import { qualifiedName } from '../sinks/bigquery/views.js';

/**
 * The version a sink already holds for the row of each event (null: none, or a sink
 * without versions), so replay can tell `superseded` (the sink holds a newer version:
 * nothing is written) from a letter to deliver. This only classifies: the sinks' own
 * version checks are what guarantee an older value never overwrites a newer one, even
 * when `stream` writes the row between this read and the replay's write.
 */
export interface HeldVersions {
  held(events: ChangeEvent[]): Promise<Array<string | null>>;
  close?(): Promise<void>;
}

/** HTTP has no versions: the receiver dedups by Idempotency-Key, so every letter is sent. */
export const noVersions: HeldVersions = { held: async (events) => events.map(() => null) };

/** Redis: the per-key version hash and the table's truncate floor, as the Lua script compares them. */
export function redisVersions(client: Redis, prefix: string): HeldVersions {
  return {
    async close() {
      client.disconnect();
    },
    async held(events) {
      if (client.status === 'wait') await client.connect();
      const pipeline = client.pipeline();
      for (const e of events) {
        const table = `${e.schema}.${e.table}`;
        pipeline.get(`${prefix}trunc:${table}`);
        if (e.key) pipeline.hget(`${prefix}ver:${table}`, canonicalJson(e.key));
        else pipeline.get(`${prefix}trunc:${table}`);
      }
      const answers = (await pipeline.exec()) ?? [];
      return events.map((_, i) => {
        const [floor, row] = [answers[2 * i]?.[1], answers[2 * i + 1]?.[1]] as Array<string | null | undefined>;
        return maxVersion(floor ?? null, row ?? null);
      });
    },
  };
}

/**
 * BigQuery: the greatest version of each row in the append log (deletes included, since
 * a delete newer than the letter supersedes it too), and the table's latest truncate.
 * One query per batch of letters.
 */
export function bigQueryVersions(bq: BigQuery, projectId: string, dataset: string, table: string): HeldVersions {
  const name = qualifiedName(projectId, dataset, table);
  return {
    async held(events) {
      if (events.length === 0) return [];
      const rowOf = (e: ChangeEvent) => `${e.schema}.${e.table}|${e.key === null ? '*' : canonicalJson(e.key)}`;
      const tables = [...new Set(events.map((e) => `${e.schema}.${e.table}`))];
      const rows = [...new Set(events.map(rowOf))];
      const query = `SELECT CONCAT(source_schema, '.', source_table, '|', row_key) AS row_id, MAX(version) AS version FROM ${name}
WHERE CONCAT(source_schema, '.', source_table, '|', row_key) IN UNNEST(@rows)
   OR (op = 'truncate' AND CONCAT(source_schema, '.', source_table) IN UNNEST(@tables))
GROUP BY row_id`;
      const [answer] = await onceMoreOnReset(() => bq.query({ query, params: { rows, tables } }));
      const held = new Map((answer as Array<{ row_id: string; version: string }>).map((r) => [r.row_id, r.version]));
      return events.map((e) => maxVersion(held.get(`${e.schema}.${e.table}|*`) ?? null, held.get(rowOf(e)) ?? null));
    },
  };
}

function maxVersion(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return a > b ? a : b;
}

/** superseded: the sink holds a newer version; present: it holds this very version (already delivered). */
export function compareHeld(event: ChangeEvent, held: string | null): 'superseded' | 'present' | 'deliver' {
  if (held === null) return 'deliver';
  const mine = eventVersion(event);
  if (held > mine) return 'superseded';
  return held === mine ? 'present' : 'deliver';
}


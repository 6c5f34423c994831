import type pg from 'pg';
import { beginTransaction, eventsOf, type OpenTransaction, type SourceInfo } from '../../src/core/capture/assembler.js';
import type { ChangeEvent } from '../../src/core/event/envelope.js';
import { RawTextPgoutputPlugin } from '../../src/core/source/pgoutput-plugin.js';
import { TypeRegistry } from '../../src/core/source/pg-types.js';

/**
 * Reads a logical slot with SQL (not through the capturer's replication connection) and
 * turns its pgoutput messages into events with the capturer's assembler: the witness of
 * crash tests and the sampler of the capture benchmark. `peek` leaves the slot as it is;
 * otherwise the slot is consumed chunk by chunk, so memory stays bounded.
 */
export async function forEachSlotEvent(
  db: pg.Client,
  options: { slot: string; publication: string; source: SourceInfo; peek?: boolean; limit?: number },
  onEvent: (event: ChangeEvent) => void,
): Promise<void> {
  const plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: [options.publication] });
  const registry = new TypeRegistry((sql, params) => db.query(sql, params));
  const fn = options.peek ? 'pg_logical_slot_peek_binary_changes' : 'pg_logical_slot_get_binary_changes';
  let tx: OpenTransaction | null = null;
  for (;;) {
    const { rows } = await db.query<{ data: Buffer }>(
      `SELECT data FROM ${fn}($1, NULL, $3, 'proto_version', '1', 'publication_names', $2)`,
      [options.slot, options.publication, options.limit ?? 20000],
    );
    for (const { data } of rows) {
      const message = plugin.parse(data);
      if (message.tag === 'begin') tx = beginTransaction(message);
      else if (message.tag === 'relation') await registry.resolveForRelation(message);
      else if (message.tag === 'commit') tx = null;
      else if (tx) for (const event of eventsOf(message, tx, registry, options.source)) onEvent(event);
    }
    if (rows.length === 0 || options.peek) return;
  }
}

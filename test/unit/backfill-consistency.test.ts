import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventVersion } from '../../src/core/event/version.js';
import { formatLsn } from '../../src/core/event/lsn.js';

/**
 * The consistency rule of backfill as pure functions. A chunk is read in a snapshot that
 * sees exactly the transactions committed before its consistent point C (snapshot.ts);
 * the read carries C and its version sorts between the changes before C and those at or
 * after it. Then a sink that keeps the greatest version per row ends equal to PostgreSQL
 * whatever order the reads and the changes reach it in.
 */
const change = (lsn: bigint, position: number) => eventVersion({ op: 'update', lsn: formatLsn(lsn), position });
const read = (lsn: bigint) => eventVersion({ op: 'read', lsn: formatLsn(lsn) });

describe('backfill read versions', () => {
  it('a read at C sorts after every change committed before C', () => {
    assert.ok(read(0x1000n) > change(0xfffn, 9_999_999_999));
    assert.ok(read(0x1000n) > change(0x10n, 0));
  });
  it('and before every change committed at or after C, position 0 included', () => {
    assert.ok(read(0x1000n) < change(0x1000n, 0));
    assert.ok(read(0x1000n) < change(0x1001n, 0));
  });
  it('a read from a later snapshot sorts after one from an earlier snapshot', () => {
    assert.ok(read(0x2000n) > read(0x1000n));
  });
  it('versions keep sorting as text across the 32-bit boundary of the LSN', () => {
    assert.ok(read(0x1_0000_0000n) > change(0xffff_ffffn, 5));
  });
});

interface Op {
  version: string;
  value: number | null; // null: deleted
}

/** The sinks' rule (Redis script, BigQuery latest view): the greatest version wins; a delete keeps its version. */
function applyAll(ops: Op[]): number | null | undefined {
  let best: Op | undefined;
  for (const op of ops) if (!best || op.version > best.version) best = op;
  return best?.value;
}

function shuffled<T>(items: T[], rand: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('backfill against a running stream (model of one row)', () => {
  it('for random histories, snapshot points and arrival orders, the sink ends at the last state in PostgreSQL', () => {
    const rand = seeded(20261124);
    for (let trial = 0; trial < 2000; trial++) {
      // A row's history: changes at increasing commit LSNs; some deletes, some re-inserts.
      const history: Array<{ lsn: bigint; value: number | null }> = [];
      let lsn = 0x100n;
      const n = 1 + Math.floor(rand() * 6);
      for (let i = 0; i < n; i++) {
        lsn += 1n + BigInt(Math.floor(rand() * 50));
        history.push({ lsn, value: rand() < 0.2 ? null : Math.floor(rand() * 1000) });
      }
      // One or two chunk reads of the row, at snapshot points anywhere in the history
      // (at a commit's own LSN too: such a commit is not visible to the snapshot).
      const ops: Op[] = history.map((h, i) => ({ version: change(h.lsn, i % 3), value: h.value }));
      for (let r = 0; r < 1 + Math.floor(rand() * 2); r++) {
        const at = 0x100n + BigInt(Math.floor(rand() * Number(lsn - 0x100n + 10n)));
        const visible = history.filter((h) => h.lsn < at);
        const state = visible.length === 0 ? undefined : visible[visible.length - 1]!.value;
        // The chunk only reads a row that exists in its snapshot.
        if (state !== undefined && state !== null) ops.push({ version: read(at), value: state });
      }
      const final = history[history.length - 1]!.value;
      for (let order = 0; order < 3; order++) {
        assert.equal(applyAll(shuffled(ops, rand)), final, `trial ${trial}: history ${JSON.stringify(history.map((h) => [Number(h.lsn), h.value]))}`);
      }
    }
  });
  it('without the read versions (a read stamped with the time it was delivered, say) the same histories go wrong', () => {
    // The counter-check: the model above can fail. A read that always wins goes older.
    const history = [{ lsn: 0x200n, value: 1 }, { lsn: 0x300n, value: 2 }];
    const ops: Op[] = [...history.map((h) => ({ version: change(h.lsn, 0), value: h.value })), { version: 'zzzz', value: 1 }];
    assert.notEqual(applyAll(ops), 2);
  });
});

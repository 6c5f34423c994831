import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CopyRowSplitter, parseCopyLine, unescapeCopyField } from '../../src/core/backfill/copy-rows.js';
import { chunkCopy, chunkQuery } from '../../src/core/backfill/plan.js';

/** A value as COPY TO's text format prints it (what PostgreSQL's CopyAttributeOutText escapes). */
const escape = (v: string | null): string =>
  v === null ? '\\N' : v.replace(/[\\\b\f\n\r\t\v]/g, (c) => `\\${({ '\\': '\\', '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't', '\v': 'v' } as Record<string, string>)[c]}`);
const line = (row: Array<string | null>): string => `${row.map(escape).join('\t')}\n`;

const ROWS: Array<Array<string | null>> = [
  ['1', 'plain', null, ''],
  ['2', 'tab\there, newline\nthere, cr\r, back\\slash', '\\x0a0b', 'N'],
  ['3', 'é ü 😀 中文', '{"a": "b\\"c"}', '\\N as text'],
  ['4', '\b\f\v', '\\', 'end\\'],
];

describe('COPY TO text format, read back as the columns\' text', () => {
  it('undoes every escape COPY TO writes, and reads \\N as NULL only as a whole field', () => {
    for (const row of ROWS) assert.deepEqual(parseCopyLine(line(row).slice(0, -1)), row);
    assert.equal(unescapeCopyField('a\\qb'), 'aqb', 'another escaped character is itself');
    assert.equal(unescapeCopyField('no escapes'), 'no escapes');
  });

  it('splits rows however the bytes are cut into chunks, UTF-8 characters across the cut included', () => {
    const bytes = Buffer.from(ROWS.map(line).join(''));
    for (let cut = 1; cut < bytes.length; cut++) {
      const rows = new CopyRowSplitter();
      const got = [...rows.push(bytes.subarray(0, cut)), ...rows.push(bytes.subarray(cut))];
      rows.end();
      assert.deepEqual(got, ROWS, `cut at byte ${cut}`);
    }
    const oneByOne = new CopyRowSplitter();
    const got = [...bytes].flatMap((b) => oneByOne.push(Buffer.from([b])));
    assert.deepEqual(got, ROWS);
  });

  it('a COPY that ends inside a row is an error, not a short row', () => {
    const rows = new CopyRowSplitter();
    assert.deepEqual(rows.push(Buffer.from('1\ta\n2\tb')), [['1', 'a']]);
    assert.throws(() => rows.end(), /ended inside a row \(3 bytes without a newline\)/);
  });
});

describe('chunkCopy', () => {
  const t = { schema: 'public', table: 'odd $1 "name"' };
  it("is chunkQuery with the saved key as literals (pg's escapeLiteral, with its space before E''), the $ in a quoted name and in the condition left alone", () => {
    const text = chunkCopy(t, ['id', 'k'], ["7'x", 'back\\slash'], "note <> '$1'", 100);
    assert.equal(text, `COPY (SELECT * FROM "public"."odd $1 ""name""" WHERE ("id", "k") > ('7''x',  E'back\\\\slash') AND (note <> '$1') ORDER BY "id", "k" LIMIT 100) TO STDOUT`);
    assert.equal(chunkQuery(t, ['id', 'k'], ['7', 'x'], null, 100).text, `SELECT * FROM "public"."odd $1 ""name""" WHERE ("id", "k") > ($1, $2) ORDER BY "id", "k" LIMIT 100`);
    assert.equal(chunkCopy(t, ['id'], null, null, 5), `COPY (SELECT * FROM "public"."odd $1 ""name""" ORDER BY "id" LIMIT 5) TO STDOUT`);
  });
});

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { makeRowValidator } from '../../src/core/delivery/validate-rows.js';
import type { ChangeEvent } from '../../src/core/event/envelope.js';
import { tempDir } from '../helpers/temp-dir.js';

const dir = tempDir('streamctl-validate-rows-');
const file = (name: string, content: unknown) => {
  const p = path.join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
};

const usersSchema = file('users.json', {
  type: 'object',
  required: ['id', 'email'],
  properties: { id: { type: 'string', pattern: '^[0-9]+$' }, email: { type: 'string', format: 'email' }, age: { type: 'integer', minimum: 0 } },
  additionalProperties: false,
});

function event(after: Record<string, unknown> | null, overrides: Partial<ChangeEvent> = {}): ChangeEvent {
  return {
    id: 'c-1',
    version: 1,
    op: 'insert',
    schema: 'public',
    table: 'users',
    key: { id: '1' },
    before: null,
    after,
    lsn: '0/1',
    position: 0,
    xid: 1,
    commit_ts: '2025-01-01T00:00:00.000000Z',
    source: { pipeline: 'p', db: 'app', kind: 'cdc' },
    ...overrides,
  };
}

describe('row validation', () => {
  const validate = makeRowValidator({ 'public.users': usersSchema });

  it('accepts a valid row', () => {
    assert.deepEqual(validate(event({ id: '1', email: 'a@example.com', age: 3 })), []);
  });

  it('lists every problem of a row (allErrors, formats)', () => {
    const problems = validate(event({ id: 'x', email: 'not-an-email', age: -1, extra: true }));
    assert.deepEqual(problems.sort(), [
      'after/age: must be >= 0',
      'after/email: must match format "email"',
      'after/id: must match pattern "^[0-9]+$"',
      "after: must NOT have additional properties 'extra'",
    ]);
    assert.deepEqual(validate(event({ id: '1' })), ["after: must have required property 'email'"]);
  });

  it('checks updates and backfill reads; a missing row is a problem', () => {
    assert.equal(validate(event({ id: 'x', email: 'a@example.com' }, { op: 'update' })).length, 1);
    assert.equal(validate(event({ id: 'x', email: 'a@example.com' }, { op: 'read' })).length, 1);
    assert.deepEqual(validate(event(null, { op: 'update' })), ['after: a update must carry the row']);
  });

  it('says nothing for deletes, truncates and tables without a schema', () => {
    assert.deepEqual(validate(event(null, { op: 'delete', before: { id: '1' } })), []);
    assert.deepEqual(validate(event(null, { op: 'truncate', key: null })), []);
    assert.deepEqual(validate(event({ anything: 'goes' }, { table: 'orders' })), []);
    assert.deepEqual(makeRowValidator({})(event({ id: 'x' })), []);
  });

  it('reads draft 2020-12 schemas, and one file shared by two tables', () => {
    const modern = file('modern.json', {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: 'https://example.com/row',
      type: 'object',
      $defs: { n: { type: 'integer' } },
      properties: { n: { $ref: '#/$defs/n' } },
    });
    const v = makeRowValidator({ 'public.a': modern, 'public.b': modern });
    assert.deepEqual(v(event({ n: 'x' }, { table: 'a' })), ['after/n: must be integer']);
    assert.deepEqual(v(event({ n: 'x' }, { table: 'b' })), ['after/n: must be integer']);
    // Another file with the same $id does not clash.
    const twin = file('twin.json', { $schema: 'https://json-schema.org/draft/2020-12/schema', $id: 'https://example.com/row', type: 'object' });
    assert.doesNotThrow(() => makeRowValidator({ 'public.a': modern, 'public.c': twin }));
  });

  it('throws at construction, naming the table and the file, for a missing file, bad JSON or an invalid schema', () => {
    const missing = path.join(dir, 'missing.json');
    assert.throws(() => makeRowValidator({ 'public.users': missing }), (err: Error) => {
      assert.match(err.message, /^validation\.tables\.public\.users: .*missing\.json: cannot read the JSON Schema \(ENOENT\)/);
      return true;
    });
    const notJson = file('bad.json', '{ nope');
    assert.throws(() => makeRowValidator({ 'public.t': notJson }), /validation\.tables\.public\.t: .*bad\.json: not JSON/);
    const invalid = file('invalid.json', { type: 'objekt' });
    assert.throws(() => makeRowValidator({ 'public.t': invalid }), /validation\.tables\.public\.t: .*invalid\.json: not a valid JSON Schema/);
    const array = file('array.json', [1, 2]);
    assert.throws(() => makeRowValidator({ 'public.t': array }), /array\.json: not a JSON Schema/);
  });
});

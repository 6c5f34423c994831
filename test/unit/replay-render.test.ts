import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderInspect } from '../../src/commands/replay-dlq.js';
import { Output } from '../../src/commands/shared/output.js';
import type { InspectResult } from '../../src/core/replay/inspect.js';

const result: InspectResult = {
  summary: {
    letters: 1,
    states: { open: 1, failing: 0, replayed: 0, superseded: 0, requeued: 0 },
    duplicates: 0,
    open_by: { http: { http_422: { 'public.t': 1 } } },
    oldest_failure: '2026-12-01T03:00:00Z',
    newest_failure: '2026-12-01T03:00:00Z',
    read: 1,
  },
  letters: [
    {
      event_id: 'e1',
      sink: 'http',
      table: 'public.t',
      key: '{"id":1}',
      op: 'insert',
      state: 'open',
      error_class: 'http_422',
      message: 'HTTP 422',
      attempts: 1,
      first_failure_at: '2026-12-01T03:00:00Z',
      last_failure_at: '2026-12-01T03:00:00Z',
      source: { topic: 'p.changes', partition: 0, offset: '7' },
      dlq: { partition: 0, offset: '0' },
      replay_run: null,
      resolved_by: null,
    },
  ],
  truncated: false,
};

const outputOn = (isTTY: boolean, env: NodeJS.ProcessEnv) =>
  new Output({ json: false, color: undefined, logLevel: 'info', stdout: { isTTY, write: () => true } as unknown as NodeJS.WriteStream, stderr: { isTTY, write: () => true } as unknown as NodeJS.WriteStream, env });

describe('replay-dlq rendering', () => {
  it('a terminal gets a coloured table', () => {
    const text = renderInspect(result, outputOn(true, {}), false);
    assert.match(text, /STATE\s+SINK\s+TABLE\s+KEY/);
    assert.match(text, /\x1b\[/);
  });
  it('NO_COLOR keeps the table without colour; a pipe gets one plain line per letter', () => {
    const noColor = renderInspect(result, outputOn(true, { NO_COLOR: '1' }), false);
    assert.match(noColor, /STATE\s+SINK/);
    assert.doesNotMatch(noColor, /\x1b\[/);
    const piped = renderInspect(result, outputOn(false, {}), false);
    assert.match(piped, /^letter state=open sink=http table=public\.t key=\{"id":1\} op=insert error_class=http_422 attempts=1 .* source=p\.changes:0:7 event_id=e1 /m);
    assert.doesNotMatch(piped, /\x1b\[/);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransactionStateError, TransactionStateMachine, type TransactionState } from '../../src/core/kafka/transaction-state.js';

const at = (...path: TransactionState[]): TransactionStateMachine => {
  const m = new TransactionStateMachine();
  for (const s of path) m.transitionTo(s);
  return m;
};

describe('transaction state machine', () => {
  it('walks the happy path: connect, begin, checkpoint, commit, and again', () => {
    const m = new TransactionStateMachine();
    assert.equal(m.state, 'disconnected');
    for (const [op, next] of [
      ['begin', 'open'],
      ['checkpoint', 'checkpointed'],
      ['commit', 'committing'],
    ] as const) {
      if (m.state === 'disconnected') m.transitionTo('ready');
      m.guard(op);
      m.transitionTo(next);
    }
    m.transitionTo('ready');
    m.guard('begin');
  });

  it('allows one open transaction at a time', () => {
    assert.throws(() => at('ready', 'open').guard('begin'), TransactionStateError);
    assert.throws(() => at('ready', 'open').transitionTo('open'), /invalid transition open -> open/);
  });

  it('takes no record after the checkpoint, so the checkpoint covers everything committed', () => {
    const m = at('ready', 'open', 'checkpointed');
    assert.throws(() => m.guard('send'), /cannot send in state checkpointed/);
    assert.throws(() => m.guard('checkpoint'), /cannot checkpoint in state checkpointed/);
  });

  it('never commits without a checkpoint', () => {
    assert.throws(() => at('ready', 'open').guard('commit'), /cannot commit in state open/);
    assert.throws(() => at('ready', 'open').transitionTo('committing'), /invalid transition open -> committing/);
  });

  it('only aborts a transaction whose send failed', () => {
    const m = at('ready', 'open', 'failed');
    assert.throws(() => m.guard('checkpoint'), /cannot checkpoint in state failed/);
    assert.throws(() => m.guard('send'), /cannot send in state failed/);
    m.guard('abort');
    m.transitionTo('aborting');
    m.transitionTo('ready');
  });

  it('aborts a commit that failed', () => {
    const m = at('ready', 'open', 'checkpointed', 'committing');
    m.guard('abort');
    m.transitionTo('aborting');
    m.transitionTo('ready');
  });

  it('does nothing more once fenced, not even after a reconnect', () => {
    const m = at('ready', 'open');
    m.transitionTo('fenced');
    assert.equal(m.fenced, true);
    for (const op of ['begin', 'send', 'checkpoint', 'commit', 'abort'] as const) assert.throws(() => m.guard(op), /fenced/);
    m.transitionTo('disconnected');
    assert.throws(() => m.transitionTo('ready'), /invalid transition fenced -> ready/);
  });

  it('never begins before connecting', () => {
    assert.throws(() => new TransactionStateMachine().guard('begin'), /cannot begin in state disconnected/);
  });
});

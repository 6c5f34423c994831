import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { wantsColor } from '../../src/commands/shared/output.js';

describe('colour', () => {
  const tty = { isTTY: true };
  it('is on for a terminal only', () => {
    assert.equal(wantsColor(tty, {}, undefined), true);
    assert.equal(wantsColor({ isTTY: false }, {}, undefined), false);
    assert.equal(wantsColor({}, {}, undefined), false);
  });
  it('is off with NO_COLOR set (to anything but empty), --no-color, or TERM=dumb', () => {
    assert.equal(wantsColor(tty, { NO_COLOR: '1' }, undefined), false);
    assert.equal(wantsColor(tty, { NO_COLOR: '' }, undefined), true);
    assert.equal(wantsColor(tty, {}, false), false);
    assert.equal(wantsColor(tty, { TERM: 'dumb' }, undefined), false);
  });
});

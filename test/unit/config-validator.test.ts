import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CONFIG_SCHEMA } from '../../src/core/config/schema.js';
import { defaultConfig } from '../../src/core/config/defaults.js';
import { ajvForConfig, configValidator, loadPrecompiled, PRECOMPILED_FILE } from '../../src/core/config/validator.js';
import { tempDir } from '../helpers/temp-dir.js';

const dir = tempDir('streamctl-validator-');
const built = path.resolve(import.meta.dirname, '../../src/core/config', PRECOMPILED_FILE);

/** Configurations with mistakes of every kind the schema checks: types, ranges, patterns, unknown and missing settings. */
function badConfigs(): unknown[] {
  const base = (): Record<string, any> => structuredClone(defaultConfig()) as unknown as Record<string, any>;
  const out: unknown[] = [];
  let c = base();
  c.pipeline.id = 'Not Valid!';
  c.kafka.brokers = [];
  c.postgres.port = 70000;
  out.push(c);
  c = base();
  c.capture.maxBatchEvents = 'many';
  c.kafka.unknownSetting = true;
  delete c.postgres.host;
  out.push(c);
  c = base();
  c.sinks.redis.retry.initialDelayMs = -1;
  c.log.level = 'loud';
  out.push(c);
  out.push('not a mapping', null, []);
  return out;
}

describe('config validator (ajv standalone code written at build time)', () => {
  it('the build wrote it from this schema, and loading the configuration uses it', () => {
    assert.ok(loadPrecompiled(built, CONFIG_SCHEMA), `${built}: missing or made from another schema (npm run build writes it)`);
    assert.equal(configValidator(CONFIG_SCHEMA).origin, 'precompiled');
  });

  it('reports exactly the errors the schema compiled at run time reports', () => {
    const precompiled = loadPrecompiled(built, CONFIG_SCHEMA)!;
    const compiled = ajvForConfig().compile(CONFIG_SCHEMA);
    assert.equal(precompiled(defaultConfig()), true, String(JSON.stringify(precompiled.errors)));
    for (const config of badConfigs()) {
      assert.equal(precompiled(config), compiled(config));
      assert.ok((precompiled.errors ?? []).length > 0);
      assert.deepEqual(precompiled.errors, compiled.errors);
    }
  });

  it('a file made from another schema is not used: the schema is compiled instead', () => {
    const stale = path.join(dir, PRECOMPILED_FILE);
    writeFileSync(stale, 'module.exports = function validate() { return true; };\nmodule.exports.schemaHash = "0000";\n');
    assert.equal(loadPrecompiled(stale, CONFIG_SCHEMA), null);
    const schema = structuredClone(CONFIG_SCHEMA);
    const validator = configValidator(schema, stale);
    assert.equal(validator.origin, 'compiled');
    assert.equal(validator.validate('not a mapping'), false);
    assert.equal(configValidator(schema, path.join(dir, 'absent.cjs')), validator, 'made once per schema object');
  });
});

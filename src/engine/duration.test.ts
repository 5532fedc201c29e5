import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from './duration.js';
import { parseTrigger } from './trigger.js';
import { parseDuckType } from './schema.js';

test('durations', () => {
  assert.equal(parseDuration('24h'), 86_400_000);
  assert.equal(parseDuration('1d'), 86_400_000);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration(90), 90_000);
  assert.equal(parseDuration('90'), 90_000);
  assert.throws(() => parseDuration('1 day'), /invalid duration/);
  assert.equal(formatDuration(86_400_000), '1d');
  assert.equal(formatDuration(90_000), '90s');
});

test('triggers', () => {
  assert.deepEqual(parseTrigger('available-now'), { kind: 'available-now' });
  assert.deepEqual(parseTrigger('interval:30s'), { kind: 'interval', everyMs: 30_000 });
  assert.deepEqual(parseTrigger('continuous', 50), { kind: 'continuous', pollMs: 50 });
  assert.throws(() => parseTrigger('sometimes'), /unknown trigger/);
  assert.throws(() => parseTrigger('interval:0s'), /positive/);
});

test('DuckDB types map to Delta types', () => {
  assert.equal(parseDuckType('VARCHAR'), 'string');
  assert.equal(parseDuckType('TIMESTAMP'), 'timestamp');
  assert.deepEqual(parseDuckType('VARCHAR[]'), { type: 'array', elementType: 'string', containsNull: true });
  assert.deepEqual(parseDuckType('STRUCT(as_number BIGINT, "as org" VARCHAR)'), {
    type: 'struct',
    fields: [
      { name: 'as_number', type: 'long', nullable: true, metadata: {} },
      { name: 'as org', type: 'string', nullable: true, metadata: {} },
    ],
  });
  assert.equal(parseDuckType('DECIMAL(18,3)'), 'decimal(18,3)');
});

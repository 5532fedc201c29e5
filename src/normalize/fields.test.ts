import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Db } from '../sql/duckdb.js';
import { castSql, fieldKind, sqlType, valueFits } from './fields.js';

test('field kinds come from names, not values', () => {
  assert.equal(fieldKind('timestamp'), 'timestamp_ms');
  assert.equal(fieldKind('ContextTimeStamp'), 'epoch_time');
  assert.equal(fieldKind('ProcessStartTime'), 'epoch_time');
  assert.equal(fieldKind('LogonTime'), 'epoch_time');
  assert.equal(fieldKind('_time'), 'epoch_time');
  assert.equal(fieldKind('UTCTimestamp'), 'text'); // ms in some feeds, s in others: left as text
  assert.equal(fieldKind('KernelTime'), 'bigint'); // a duration, not a point in time
  assert.equal(fieldKind('LocalPort'), 'bigint');
  assert.equal(fieldKind('DnsRequestCount'), 'bigint');
  assert.equal(fieldKind('ConnectionFlags'), 'bigint');
  assert.equal(fieldKind('ContextProcessId'), 'uint64');
  assert.equal(fieldKind('RawProcessId'), 'uint64');
  assert.equal(fieldKind('TreeId'), 'uint64');
  assert.equal(fieldKind('SensorId'), 'text');
  assert.equal(fieldKind('ActivityId'), 'text');
  assert.equal(fieldKind('CommandLine'), 'text');
  assert.equal(sqlType('uint64'), 'DECIMAL(20,0)');
  assert.equal(sqlType('epoch_time'), 'TIMESTAMP');
});

test('valueFits accepts the documented formats and rejects the rest', () => {
  assert.ok(valueFits('bigint', '443'));
  assert.ok(valueFits('bigint', 443));
  assert.ok(valueFits('bigint', ''));
  assert.ok(valueFits('bigint', null));
  assert.ok(valueFits('bigint', '9223372036854775807'));
  assert.ok(!valueFits('bigint', '9223372036854775808'));
  assert.ok(!valueFits('bigint', 'abc'));
  assert.ok(!valueFits('bigint', '1.5'));
  assert.ok(!valueFits('bigint', { a: 1 }));
  assert.ok(valueFits('uint64', '18446744072636268557'));
  assert.ok(!valueFits('uint64', '18446744073709551616'));
  assert.ok(!valueFits('uint64', '-1'));
  assert.ok(valueFits('epoch_time', '1604855131.666'));
  assert.ok(valueFits('epoch_time', '-11724671741.249'));
  assert.ok(valueFits('epoch_time', 133145666190000000)); // FILETIME as a JSON number
  assert.ok(valueFits('epoch_time', '2021-10-08 19:55:04.448Z'));
  assert.ok(!valueFits('epoch_time', '1604855131666')); // ms in a seconds field: ambiguous
  assert.ok(!valueFits('epoch_time', 'none'));
  assert.ok(valueFits('timestamp_ms', '1604850899812'));
  assert.ok(valueFits('timestamp_ms', '2024-08-01T11:31:27.123Z'));
  assert.ok(!valueFits('timestamp_ms', '16048508998.12'));
  assert.ok(valueFits('text', [1, 2]));
  assert.ok(valueFits('text', true));
});

test('castSql converts exactly in DuckDB', async () => {
  const db = await Db.open();
  try {
    const q = (kind: Parameters<typeof castSql>[0], v: string): Promise<Record<string, unknown>[]> =>
      db.allJson(`SELECT CAST(${castSql(kind, 'v')} AS VARCHAR) AS x FROM (SELECT '${v}' AS v)`);
    assert.equal((await q('timestamp_ms', '1604850899812'))[0].x, '2020-11-08 15:54:59.812');
    assert.equal((await q('timestamp_ms', '2024-08-01T11:31:27.123Z'))[0].x, '2024-08-01 11:31:27.123');
    assert.equal((await q('epoch_time', '1604855131.666123'))[0].x, '2020-11-08 17:05:31.666123');
    assert.equal((await q('epoch_time', '1636436839.9529998'))[0].x, '2021-11-09 05:47:19.953');
    // FILETIME 133145666190000000 = (13314566619 - 11644473600) s after 1970
    assert.equal((await q('epoch_time', '133145666190000000'))[0].x, '2022-12-03 18:43:39');
    assert.equal((await q('epoch_time', ''))[0].x, null);
    assert.equal((await q('uint64', '18446744072636268557'))[0].x, '18446744072636268557');
    assert.equal((await q('uint64', '9960000700989070560'))[0].x, '9960000700989070560');
    assert.equal((await q('bigint', '9007199254740993'))[0].x, '9007199254740993');
    assert.equal((await q('text', ''))[0].x, null);
  } finally {
    db.close();
  }
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FileJudge, parsePredicate } from './filter.js';
import type { AddFile, StructType } from './table.js';

const schema: StructType = {
  type: 'struct',
  fields: [
    { name: 'day', type: 'date', nullable: true, metadata: {} },
    { name: 'host', type: 'string', nullable: true, metadata: {} },
    { name: 'port', type: 'integer', nullable: true, metadata: {} },
    { name: 'ts', type: 'timestamp', nullable: true, metadata: {} },
    {
      name: 'geo',
      type: { type: 'struct', fields: [{ name: 'cc', type: 'string', nullable: true, metadata: {} }] },
      nullable: true,
      metadata: {},
    },
  ],
};

function file(day: string | null, stats?: object): AddFile {
  return {
    path: `f-${day}`,
    partitionValues: { day },
    size: 1,
    modificationTime: 0,
    dataChange: true,
    ...(stats ? { stats: JSON.stringify(stats) } : {}),
  };
}

const f1 = file('2024-01-01', {
  numRecords: 10,
  minValues: { host: 'alpha', port: 22, ts: '2024-01-01T00:00:00.000Z', geo: { cc: 'DE' } },
  maxValues: { host: 'delta', port: 443, ts: '2024-01-01T23:59:59.999Z', geo: { cc: 'US' } },
  nullCount: { host: 0, port: 2, ts: 0, geo: { cc: 0 } },
});
const fNull = file(null, { numRecords: 3, minValues: {}, maxValues: {}, nullCount: { host: 3, port: 3 } });
const fNoStats = file('2024-01-02');

function may(filter: string, f: AddFile): boolean {
  return new FileJudge(schema, ['day'], parsePredicate(filter)).mayMatch(f);
}

test('partition predicates are exact, with SQL NULL semantics', () => {
  assert.equal(may(`day = '2024-01-01'`, f1), true);
  assert.equal(may(`day = DATE '2024-01-02'`, f1), false);
  assert.equal(may(`day <> '2024-01-01'`, f1), false);
  assert.equal(may(`day = '2024-01-01'`, fNull), false);
  assert.equal(may(`day != '2024-01-01'`, fNull), false);
  assert.equal(may(`day IS NULL`, fNull), true);
  assert.equal(may(`day IS NOT NULL`, fNull), false);
  assert.equal(may(`day IN ('2024-01-03', '2024-01-01')`, f1), true);
  assert.equal(may(`day NOT IN ('2024-01-01')`, f1), false);
  assert.equal(may(`NOT (day = '2024-01-01')`, f1), false);
  assert.equal(may(`day BETWEEN '2023-12-31' AND '2024-01-01'`, f1), true);
  assert.equal(may(`day NOT BETWEEN '2023-12-31' AND '2024-01-01'`, f1), false);
  assert.equal(may(`'2024-01-01' = day`, f1), true);
  assert.equal(may(`'2024-01-05' < day`, f1), false);
});

test('min/max/nullCount stats rule files out only when certain', () => {
  assert.equal(may('port = 80', f1), true);
  assert.equal(may('port = 8', f1), false);
  assert.equal(may('port > 443', f1), false);
  assert.equal(may('port >= 443', f1), true);
  assert.equal(may('port < 22', f1), false);
  assert.equal(may('port IS NULL', f1), true);
  assert.equal(may('host IS NULL', f1), false);
  assert.equal(may('host IS NOT NULL', fNull), false);
  assert.equal(may(`host = 'zulu'`, f1), false);
  assert.equal(may(`host = 'beta'`, f1), true);
  assert.equal(may(`geo.cc = 'FR'`, f1), true);
  assert.equal(may(`geo.cc = 'ZZ'`, f1), false);
  assert.equal(may(`ts > TIMESTAMP '2024-01-02 00:00:00'`, f1), false);
  // the stored max is cut to ms: .9995 may still be in the file
  assert.equal(may(`ts > '2024-01-01 23:59:59.9995'`, f1), true);
  assert.equal(may('port = 8', fNoStats), true);
  assert.equal(may('port = 8', fNull), false); // every port is NULL
});

test('boolean structure: AND prunes if any part does, OR only if all do', () => {
  assert.equal(may(`day = '2024-01-01' AND port = 8`, f1), false);
  assert.equal(may(`day = '2024-01-01' OR port = 8`, f1), true);
  assert.equal(may(`day = '2024-01-09' OR port = 8`, f1), false);
  assert.equal(may(`(day = '2024-01-09' OR port = 8) AND host = 'beta'`, f1), false);
  assert.equal(may(`day = '2024-01-09' OR port = 8 AND host = 'beta'`, f1), false);
  assert.equal(may(`NOT (day = '2024-01-09' OR port = 80)`, f1), true);
});

test('anything not understood never prunes', () => {
  for (const f of [
    `lower(host) = 'zulu'`,
    `port + 1 = 8`,
    `port = 8 + 0`,
    `host LIKE 'z%'`,
    `port = '8'::INTEGER`,
    `port = other_col`,
    `unknown_col = 1`,
    `host = 8`,
    `(port = 8`,
    `day = '2024-01-09' OR lower(host) = 'x'`,
    `CASE WHEN port = 8 THEN true END`,
  ]) {
    assert.equal(may(f, f1), true, f);
  }
  // an understood conjunct next to a non-understood one still prunes
  assert.equal(may(`lower(host) = 'x' AND day = '2024-01-09'`, f1), false);
  assert.equal(may(`port = 8 AND host LIKE 'a%'`, f1), false);
});

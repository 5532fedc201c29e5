/**
 * Real FDR samples (../shared/fixtures: elastic/integrations FDR pipeline tests, Panther's raw
 * FDR events) through the whole pipeline: types of known fields, row counts per table against
 * an independent count of the files, and the odd records handled as documented.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Lake } from '../lake/index.js';
import { FilesSource } from '../sources/files.js';
import { ingest } from './pipeline.js';
import { fixturesRoot } from '../testing/fixtures.js';

const FIX = fixturesRoot();
const ELASTIC = path.join(FIX, 'elastic-fdr');
const PANTHER = path.join(FIX, 'panther-crowdstrike', 'panther_fdr_raw_events.ndjson');

test('real FDR samples ingest with correct types, counts and documented odd-record handling', async () => {
  const files = [
    ...readdirSync(ELASTIC)
      .filter((f) => f.endsWith('.log'))
      .map((f) => path.join(ELASTIC, f)),
    PANTHER,
  ];
  // independent oracle: events per event_simpleName straight from the files
  const expected = new Map<string, number>();
  for (const f of files) {
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const o = JSON.parse(line) as Record<string, unknown>;
      const esn = o.event_simpleName;
      if (typeof esn === 'string' && /^[A-Za-z][A-Za-z0-9_]*$/.test(esn))
        expected.set(esn, (expected.get(esn) ?? 0) + 1);
    }
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-fdr-samples-'));
  const lake = await Lake.open(path.join(dir, 'lake'));
  try {
    const s = await ingest(lake, new FilesSource(files), { enricher: null, progress: false });
    for (const [name, n] of expected) assert.equal(s.tables[name], n, name);
    // secondary data recognised by shape: 2 aidmaster host rows (distinct aids), 1 userinfo, 1 notmanaged
    assert.equal(s.tables.aidmaster, 2);
    assert.equal(s.tables.userinfo, 1);
    assert.equal(s.tables.notmanaged, 1);

    await lake.registerViews();
    const db = lake.db;
    const q = await db.allJson<{ f: string; line: string; reason: string }>(
      `SELECT regexp_extract(source, '[^/]+$') AS f, line, reason FROM quarantine ORDER BY f, line`,
    );
    const reasons = q.map((r) => `${r.f}:${r.line}:${r.reason}`);
    // rows without event_simpleName that are not secondary data (streaming-API events, Tags-only
    // rows, a UserLogon and an AD logon missing the field) and a name that is not an event type
    assert.deepEqual(
      reasons.filter((r) => r.startsWith('test-fdr.log')),
      ['test-fdr.log:132:missing_event_simpleName', 'test-fdr.log:133:missing_event_simpleName'],
    );
    assert.equal(reasons.filter((r) => r.startsWith('test-data.log')).length, 5);
    assert.equal(reasons.filter((r) => r.startsWith('test-tags-formats.log')).length, 4);
    assert.equal(reasons.filter((r) => r.startsWith('test-fdr-ssl.log')).length, 1);
    assert.ok(reasons.includes('panther_fdr_raw_events.ndjson:62:invalid_event_simpleName'));
    assert.deepEqual(
      [...new Set(q.map((r) => r.reason))].sort(),
      ['invalid_event_simpleName', 'missing_event_simpleName'],
      'no type mismatches in real samples',
    );

    const cols = async (table: string): Promise<Record<string, string>> =>
      Object.fromEntries(
        (await db.allJson<{ column_name: string; column_type: string }>(`DESCRIBE ${table}`)).map((r) => [
          r.column_name,
          r.column_type,
        ]),
      );
    const nl = await cols('networklistenip4');
    assert.match(nl.timestamp, /^TIMESTAMP/);
    assert.match(nl.ContextTimeStamp, /^TIMESTAMP/);
    assert.equal(nl.LocalPort, 'BIGINT');
    assert.equal(nl.ContextProcessId, 'DECIMAL(20,0)');
    assert.equal(nl.aip, 'VARCHAR');

    // timestamp exact to the ms, ContextTimeStamp to the µs, FILETIME converted, empty → NULL
    const fs = await db.allJson(
      `SELECT strftime(CAST("timestamp" AS TIMESTAMP), '%Y-%m-%d %H:%M:%S.%g') AS ts, ` +
        `CAST(CAST(ContextTimeStamp AS TIMESTAMP) AS VARCHAR) AS cts, CAST(CAST(StartTime AS TIMESTAMP) AS VARCHAR) AS st ` +
        `FROM fsvolumeunmounted WHERE StartTime IS NOT NULL ORDER BY cts NULLS LAST`,
    );
    assert.deepEqual(fs, [
      { ts: '2020-11-08 15:54:59.812', cts: '2022-12-03 18:43:39', st: '2022-12-03 18:42:00' },
      { ts: '2020-11-08 15:54:59.812', cts: null, st: '2022-12-03 18:42:00' },
    ]);
    // a 20-digit RawProcessId (sign-extended negative pid) and a ContextProcessId above int64 stay exact
    const [raw] = await db.allJson(
      `SELECT count(*) AS n FROM (SELECT RawProcessId FROM endofprocess UNION ALL SELECT RawProcessId FROM processrollup2) ` +
        `WHERE CAST(RawProcessId AS VARCHAR) = '18446744072636268557'`,
    );
    assert.ok(Number(raw.n) >= 1);
    const [big] = await db.allJson(
      `SELECT CAST(ContextProcessId AS VARCHAR) AS c FROM terminateprocess WHERE ContextProcessId > 9223372036854775807`,
    );
    assert.equal(big?.c, '9960000700989070560');
    // Tags as a JSON array stays JSON text; a JSON number field becomes its text
    const [tags] = await db.allJson(`SELECT Tags, EventOrigin FROM lfouploadstart`);
    assert.match(String(tags.Tags), /^\["312",/);
    assert.equal(tags.EventOrigin, '17');
    // host context joins by aid
    const [host] = await db.allJson(
      `SELECT ComputerName, CAST(FirstSeen AS VARCHAR) AS fs FROM aidmaster WHERE aid = 'fffffffffffaaaaaaaaabbbbbbbb'`,
    );
    assert.deepEqual(host, { ComputerName: 'mac1', fs: '1625682391.0' });
    const [user] = await db.allJson(`SELECT UserSid, LastLoggedOnHost FROM userinfo`);
    assert.deepEqual(user, {
      UserSid: 'S-1-12-1-3697283754-1083485977-2164330645-2516515886',
      LastLoggedOnHost: 'COMPUTER1',
    });
  } finally {
    lake.close();
    await rm(dir, { recursive: true, force: true });
  }
});

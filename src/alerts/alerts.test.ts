import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Db } from '../sql/duckdb.js';
import { alertRowsSql, alertsSink, alertsTargetFilter, listAlerts } from './alerts.js';
import { StreamingQuery } from '../engine/runner.js';
import type { QueryDefinition } from '../engine/query.js';
import { appendEvents, openTempLake } from '../engine/test-support.js';

const meta = {
  detection: 'd',
  severity: 'high' as const,
  title: 'T',
  tags: ['attack.t1'],
  windowMs: 3600_000,
};
const cand = (rows: [string, string][]) =>
  `(SELECT * FROM (VALUES ${rows
    .map(([k, t]) => `('${k}', TIMESTAMP '${t}')`)
    .join(', ')}) v(dedup_key, event_time), LATERAL (SELECT NULL::VARCHAR AS title, 'x' AS description,
     'aid1' AS aid, NULL::VARCHAR AS host, NULL::VARCHAR AS "user", 'tbl' AS evidence_table, 1::BIGINT AS evidence_version,
     '{}' AS evidence))`;

test('alert ids: deterministic per detection, key and window bucket', async () => {
  const db = await Db.open({ threads: 1 });
  try {
    const sql = (rows: [string, string][]) => alertRowsSql(meta, cand(rows), 'now()');
    const a = await db.all<{ alert_id: string; dedup_key: string; event_time: Date }>(
      sql([
        ['k', '2026-01-01 10:05:00'],
        ['k', '2026-01-01 10:55:00'], // same hour bucket: one alert, the earliest
        ['k', '2026-01-01 11:00:00'], // next bucket
        ['j', '2026-01-01 10:05:00'],
      ]) + ' ORDER BY event_time, dedup_key',
    );
    assert.equal(a.length, 3);
    const b = await db.all<{ alert_id: string }>(sql([['k', '2026-01-01 10:30:00']]));
    assert.equal(
      b[0].alert_id,
      a.find((x) => x.dedup_key === 'k' && x.event_time.toISOString() === '2026-01-01T10:05:00.000Z')!
        .alert_id,
    );
    assert.match(b[0].alert_id, /^[0-9a-f]{32}$/);
    const other = await db.all<{ alert_id: string }>(
      alertRowsSql({ ...meta, detection: 'e' }, cand([['k', '2026-01-01 10:30:00']]), 'now()'),
    );
    assert.notEqual(other[0].alert_id, b[0].alert_id);
  } finally {
    db.close();
  }
});

test('alerts table: merge keeps the first alert, change feed shows only new alerts, list filters', async () => {
  const t = await openTempLake();
  try {
    const def: QueryDefinition = {
      id: 'alerting',
      sources: [{ table: 'ev' }],
      sinks: [alertsSink],
      async transform(batch) {
        const rel = batch.source('ev')!;
        const c = `(SELECT k AS dedup_key, timestamp AS event_time, NULL::VARCHAR AS title, 'about ' || k AS description,
          'a' AS aid, 'h' AS host, NULL::VARCHAR AS "user", 'ev' AS evidence_table, _commit_version AS evidence_version,
          CAST(to_json({'k': k}) AS VARCHAR) AS evidence FROM ${rel})`;
        return { alerts: alertRowsSql({ ...meta, severity: sev }, c, batch.nowSql) };
      },
    };
    let sev: 'high' | 'low' = 'high';
    await appendEvents(t.lake, 'ev', [{ k: 'k1', timestamp: '2026-01-01T10:00:00Z' }]);
    await new StreamingQuery(t.lake, def).runAvailableNow();
    const table = (await t.lake.table('alerts'))!;
    const v1 = await table.latestVersion();
    // the same alert again (same key and hour) and a new one
    sev = 'low';
    await appendEvents(t.lake, 'ev', [
      { k: 'k1', timestamp: '2026-01-01T10:30:00Z' },
      { k: 'k2', timestamp: '2026-01-01T10:30:00Z' },
    ]);
    await new StreamingQuery(t.lake, def).runAvailableNow();
    const changes = await t.lake.db.allJson<{ dedup_key: string; _change_type: string }>(
      `SELECT dedup_key, _change_type FROM ${await table.changes(v1)}`,
    );
    assert.deepEqual(changes, [{ dedup_key: 'k2', _change_type: 'insert' }]);
    const all = await listAlerts(t.lake);
    assert.deepEqual(
      all.map((a) => [a.dedup_key, a.severity, a.event_time, a.status]),
      [
        ['k1', 'high', '2026-01-01T10:00:00.000Z', 'open'],
        ['k2', 'low', '2026-01-01T10:30:00.000Z', 'open'],
      ],
    );
    assert.deepEqual(all[0].evidence, { k: 'k1' });
    assert.deepEqual(all[0].tags, ['attack.t1']);
    assert.deepEqual(
      (await listAlerts(t.lake, { severity: 'medium' })).map((a) => a.dedup_key),
      ['k1'],
    );
    assert.equal((await listAlerts(t.lake, { since: new Date(Date.now() + 3600_000) })).length, 0);
  } finally {
    await t.cleanup();
  }
});

test('the alerts MERGE target filter keeps every alert that can share an id with the new ones, and only those', async () => {
  const db = await Db.open();
  try {
    await db.run(`CREATE TEMP TABLE staged AS SELECT * FROM (VALUES
      ('ioc_match', TIMESTAMP '2026-03-02 10:00:00'), ('ioc_match', TIMESTAMP '2026-03-03 23:59:59.5'),
      ('vulnerable_services', TIMESTAMP '2026-03-05 00:00:01')) v(detection, event_time)`);
    const day = 86_400_000;
    const filter = (await alertsTargetFilter(db, 'staged', day))!;
    const holds = async (detection: string, t: string) =>
      (
        await db.all<{ m: boolean }>(
          `SELECT coalesce((${filter}), false) AS m FROM (SELECT '${detection}' AS detection, TIMESTAMP '${t}' AS event_time)`,
        )
      )[0].m;
    // Same detection, same day bucket as a new alert: may hold the same id.
    assert.equal(await holds('ioc_match', '2026-03-02 00:00:00'), true);
    assert.equal(await holds('ioc_match', '2026-03-03 23:59:59.999'), true);
    assert.equal(await holds('vulnerable_services', '2026-03-05 23:00:00'), true);
    // Other buckets, other detections: cannot.
    assert.equal(await holds('ioc_match', '2026-03-01 23:59:59.999'), false);
    assert.equal(await holds('ioc_match', '2026-03-04 00:00:00'), false);
    assert.equal(await holds('vulnerable_services', '2026-03-02 10:00:00'), false);
    assert.equal(await holds('new_logon_location', '2026-03-02 10:00:00'), false);
    // "Once ever" alerts (window 0) are bounded by detection only.
    const once = (await alertsTargetFilter(db, 'staged', 0))!;
    const r = await db.all<{ m: boolean }>(
      `SELECT (${once}) AS m FROM (SELECT 'ioc_match' AS detection, TIMESTAMP '2020-01-01' AS event_time)`,
    );
    assert.equal(r[0].m, true);
  } finally {
    db.close();
  }
});

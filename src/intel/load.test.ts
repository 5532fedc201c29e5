import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openTempLake } from '../engine/test-support.js';
import type { Lake } from '../lake/lake.js';
import { AllowList, loadIocText, reconcileAllowList } from './load.js';
import { listIocs } from './list.js';
import { literal } from '../sql/duckdb.js';
import { intelSettings } from './feeds/settings.js';

async function rows(lake: Lake, table: string): Promise<Record<string, unknown>[]> {
  const t = await lake.table(table);
  if (!t) return [];
  return lake.db.allJson(`SELECT * FROM ${await (await t.snapshot()).scan()} ORDER BY ioc_type, ioc`);
}

const NOW = new Date('2026-02-01T00:00:00Z');

test('lifecycle: feed expiry wins, else per-type TTL from the last sighting, hashes never expire; MERGE extends', async () => {
  const t = await openTempLake('talon-intel-load-');
  try {
    const settings = intelSettings({ intel: { ttl: { IPv4: '10d', domain: 'none' } } });
    const otx = {
      id: 'p1',
      indicators: [
        {
          indicator: '198.51.100.1',
          type: 'IPv4',
          created: '2026-01-10T00:00:00',
          expiration: '2026-01-20T00:00:00',
        },
        { indicator: '198.51.100.2', type: 'IPv4', created: '2026-01-10T00:00:00' },
        { indicator: 'evil.example', type: 'domain', created: '2026-01-10T00:00:00' },
        { indicator: 'a'.repeat(64), type: 'FileHash-SHA256', created: '2026-01-10T00:00:00' },
        { indicator: 'b'.repeat(5), type: 'FileHash-SHA256', created: '2026-01-10T00:00:00' },
      ],
    };
    const r = await loadIocText(t.lake, JSON.stringify(otx), 'otx', { settings, now: NOW });
    assert.equal(r.stored, 4);
    assert.deepEqual(r.rejected, { 'FileHash-SHA256: not 64 hex digits': 1 });
    const end = (rs: Record<string, unknown>[], ioc: string) =>
      rs.find((x) => x.ioc === ioc)?.last_seen ?? null;
    let iocs = await rows(t.lake, 'iocs');
    assert.equal(iocs.length, 4);
    assert.match(String(end(iocs, '198.51.100.1')), /^2026-01-20/);
    assert.match(String(end(iocs, '198.51.100.2')), /^2026-01-20/); // created + 10d
    assert.equal(end(iocs, 'evil.example'), null);
    assert.equal(end(iocs, 'a'.repeat(64)), null);
    // The same load again is a no-op (txn); a newer sighting extends the window, and
    // first_seen keeps the earliest.
    const again = await loadIocText(t.lake, JSON.stringify(otx), 'otx', { settings, now: NOW });
    assert.equal(again.alreadyLoaded, true);
    const later = {
      id: 'p2',
      indicators: [{ indicator: '198.51.100.2', type: 'IPv4', created: '2026-01-25T00:00:00' }],
    };
    await loadIocText(t.lake, JSON.stringify(later), 'otx', { settings, now: NOW });
    iocs = await rows(t.lake, 'iocs');
    const ip2 = iocs.find((x) => x.ioc === '198.51.100.2')!;
    assert.match(String(ip2.last_seen), /^2026-02-04/);
    assert.match(String(ip2.first_seen), /^2026-01-10/);
    const src = await rows(t.lake, 'ioc_sources');
    assert.equal(src.length, 4);
    assert.ok(src.every((s) => s.allow_listed === false));
  } finally {
    await t.cleanup();
  }
});

test('allow-list: IPs, CIDRs, parent domains, URL hosts; candidateSql never misses a match', async () => {
  const allow = new AllowList(['8.8.8.8', '10.0.0.0/8', 'example.com', '2001:db8::/32', 'http://x.test/A']);
  const cases: [string, string, boolean][] = [
    ['IPv4', '8.8.8.8', true],
    ['IPv4', '10.9.9.9', true],
    ['IPv4', '8.8.4.4', false],
    ['IPv4', '8.8.8.80', false],
    ['hostname', 'www.example.com', true],
    ['hostname', 'notexample.com', false],
    ['URL', 'http://cdn.example.com/x', true],
    ['URL', 'http://10.1.2.3:8080/x', true],
    ['URL', 'http://user@10.1.2.3/x', true],
    ['URL', 'http://[2001:db8::1]/', true],
    ['URL', 'http://x.test/A', true],
    ['URL', 'http://x.test/B', false],
    ['email', 'a@mail.example.com', true],
    ['IPv6', '2001:db8::9', true],
    ['IPv6', '2001:db9::9', false],
    ['IPv4-CIDR', '10.1.0.0/16', true],
    ['IPv4-CIDR', '8.0.0.0/8', false],
    ['FileHash-MD5', 'd41d8cd98f00b204e9800998ecf8427e', false],
  ];
  for (const [ioc_type, ioc, want] of cases) assert.equal(allow.matches({ ioc_type, ioc }), want, ioc);
  // The SQL pre-filter must keep every row the exact check accepts.
  const t = await openTempLake('talon-intel-allow-sql-');
  try {
    const values = cases.map(([ty, v]) => `(${literal(ty)}, ${literal(v)})`).join(', ');
    const kept = await t.lake.db.all<{ ioc: string }>(
      `SELECT ioc FROM (VALUES ${values}) v(ioc_type, ioc) WHERE ${allow.candidateSql()}`,
    );
    const keptSet = new Set(kept.map((r) => r.ioc));
    for (const [, ioc, want] of cases) if (want) assert.ok(keptSet.has(ioc), `candidateSql misses ${ioc}`);
    assert.ok(!keptSet.has('d41d8cd98f00b204e9800998ecf8427e'));
    assert.equal(new AllowList([]).candidateSql(), 'false');
  } finally {
    await t.cleanup();
  }
});

test('allow-list: matching IoCs are kept in iocs and ioc_sources, flagged; editing the list flips flags both ways', async () => {
  const t = await openTempLake('talon-intel-allow-');
  try {
    const text = '8.8.8.8\n203.0.113.9\nwww.example.com\nevil.example\n';
    const load = (allow: string[], body = text) =>
      loadIocText(t.lake, body, 'text', {
        type: 'auto',
        settings: intelSettings({ intel: { allow_list: allow } }),
        now: NOW,
      });
    const flags = async (table: string) =>
      Object.fromEntries((await rows(t.lake, table)).map((x) => [x.ioc, x.allow_listed]));
    const r = await load(['8.8.8.8', 'example.com']);
    assert.equal(r.allowListed, 2);
    assert.equal(r.stored, 4);
    assert.deepEqual(r.types, { IPv4: 2, hostname: 2 });
    const expected = {
      '8.8.8.8': true,
      '203.0.113.9': false,
      'www.example.com': true,
      'evil.example': false,
    };
    assert.deepEqual(await flags('iocs'), expected);
    assert.deepEqual(await flags('ioc_sources'), expected);
    // The list changes: the same file again is already loaded, yet the stored flags follow.
    const again = await load(['evil.example']);
    assert.equal(again.alreadyLoaded, true);
    assert.equal(again.reconciled, 6); // 3 keys flipped, in both tables
    const after = {
      '8.8.8.8': false,
      '203.0.113.9': false,
      'www.example.com': false,
      'evil.example': true,
    };
    assert.deepEqual(await flags('iocs'), after);
    assert.deepEqual(await flags('ioc_sources'), after);
    // Nothing changed: nothing written.
    const v = await (await t.lake.table('iocs'))!.latestVersion();
    const third = await load(['evil.example']);
    assert.equal(third.reconciled, 0);
    assert.equal(await (await t.lake.table('iocs'))!.latestVersion(), v);
    // A pull-less reconcile (what `intel pull` does when every feed answered 304).
    assert.equal(await reconcileAllowList(t.lake, []), 2);
    assert.deepEqual(Object.values(await flags('iocs')), [false, false, false, false]);
  } finally {
    await t.cleanup();
  }
});

test('iocs written before the allow_listed column: the column is added, old rows count as not allow-listed', async () => {
  const t = await openTempLake('talon-intel-evolve-');
  try {
    const old = await t.lake.createTable('iocs', { properties: { 'delta.enableChangeDataFeed': 'true' } });
    await old.append(`SELECT 'seed' AS dataset, '198.51.100.7' AS ioc, 'IPv4' AS ioc_type, NULL::VARCHAR AS ioc_id,
        TIMESTAMP '2026-01-01 00:00:00' AS first_seen, NULL::TIMESTAMP AS last_seen,
        NULL::VARCHAR AS description, TIMESTAMP '2026-01-01 00:00:00' AS loaded_at
      UNION ALL SELECT 'seed', 'keep.example', 'domain', NULL, TIMESTAMP '2026-01-01 00:00:00', NULL, NULL,
        TIMESTAMP '2026-01-01 00:00:00'`);
    const settings = intelSettings({ intel: { allow_list: ['198.51.100.7'] } });
    const r = await loadIocText(t.lake, '203.0.113.5\n', 'text', { type: 'IPv4', settings, now: NOW });
    assert.equal(r.inserted, 1);
    const snap = await (await t.lake.table('iocs'))!.snapshot();
    assert.ok(snap.schema.fields.some((f) => f.name === 'allow_listed'));
    const got = Object.fromEntries((await rows(t.lake, 'iocs')).map((x) => [x.ioc, x.allow_listed]));
    // The old IPv4 row was flagged by the reconcile; the old domain keeps NULL (= false).
    assert.deepEqual(got, { '198.51.100.7': true, '203.0.113.5': false, 'keep.example': null });
    const page = await listIocs(t.lake, { allowListed: false });
    assert.deepEqual(
      page.rows.map((x) => [x.ioc, x.allow_listed]),
      [
        ['203.0.113.5', false],
        ['keep.example', false],
      ],
    );
  } finally {
    await t.cleanup();
  }
});

test('a feed repeating IoCs: one row per key, earliest first_seen, latest validity, tags accumulate', async () => {
  const t = await openTempLake('talon-intel-dups-');
  try {
    const csv = [
      'ioc,ioc_type,first_seen,valid_until,tags',
      'evil.example,domain,2026-01-05T00:00:00Z,2026-03-01T00:00:00Z,a',
      'EVIL.example.,domain,2026-01-02T00:00:00Z,2026-02-01T00:00:00Z,b',
      'd41d8cd98f00b204e9800998ecf8427e,md5,2026-01-03T00:00:00Z,,',
    ].join('\n');
    const r = await loadIocText(t.lake, csv, 'csv', { settings: intelSettings({}), now: NOW });
    assert.deepEqual(r.types, { 'FileHash-MD5': 1, domain: 1 });
    assert.equal(r.parsed, 3);
    const iocs = await rows(t.lake, 'iocs');
    const d = iocs.find((x) => x.ioc === 'evil.example')!;
    assert.match(String(d.first_seen), /^2026-01-02/);
    assert.match(String(d.last_seen), /^2026-03-01/);
    const src = (await rows(t.lake, 'ioc_sources')).find((x) => x.ioc === 'evil.example')!;
    assert.deepEqual([...(src.tags as string[])].sort(), ['a', 'b']);
    // The same IoCs again with nothing new: no commit; a new one: an append, nothing rewritten.
    const v = await (await t.lake.table('iocs'))!.latestVersion();
    const same = await loadIocText(t.lake, csv, 'csv', {
      settings: intelSettings({}),
      now: NOW,
      loadId: 'x',
    });
    assert.equal(same.inserted + same.updated, 0);
    assert.equal(await (await t.lake.table('iocs'))!.latestVersion(), v);
    const more = await loadIocText(t.lake, csv + '\nnew.example,domain,2026-01-09T00:00:00Z,,', 'csv', {
      settings: intelSettings({}),
      now: NOW,
    });
    assert.deepEqual([more.inserted, more.updated], [1, 0]);
    const h = await (await t.lake.table('iocs'))!.history(1);
    assert.equal(h[0].operation, 'WRITE');
  } finally {
    await t.cleanup();
  }
});

test('intel list: pages ordered by (ioc_type, ioc), total, filters', async () => {
  const t = await openTempLake('talon-intel-list-');
  try {
    assert.deepEqual(await listIocs(t.lake), { rows: [], total: 0, offset: 0 });
    const lines: string[] = [];
    for (let i = 0; i < 250; i++) lines.push(`203.0.${Math.floor(i / 100)}.${i % 100}`);
    for (let i = 0; i < 30; i++) lines.push(`h${i}.evil.example`);
    await loadIocText(t.lake, lines.join('\n'), 'text', {
      type: 'auto',
      settings: intelSettings({ intel: { allow_list: ['203.0.2.0/24'] } }),
      now: NOW,
    });
    const p1 = await listIocs(t.lake);
    assert.equal(p1.total, 280);
    assert.equal(p1.rows.length, 100);
    assert.equal(p1.rows[0].ioc_type, 'IPv4');
    const p3 = await listIocs(t.lake, { offset: 200, limit: 100 });
    assert.equal(p3.rows.length, 80);
    assert.equal(p3.rows.at(-1)!.ioc, 'h9.evil.example');
    const hosts = await listIocs(t.lake, { type: 'hostname', limit: 5 });
    assert.deepEqual([hosts.total, hosts.rows.length], [30, 5]);
    const allowed = await listIocs(t.lake, { allowListed: true, limit: 0 });
    assert.equal(allowed.total, 50);
    assert.ok(allowed.rows.every((x) => x.allow_listed === true && String(x.ioc).startsWith('203.0.2.')));
    assert.equal((await listIocs(t.lake, { search: 'H2', limit: 0 })).total, 11); // h2, h20..h29
  } finally {
    await t.cleanup();
  }
});

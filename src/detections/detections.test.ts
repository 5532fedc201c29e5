import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Pipeline } from '../engine/pipeline.js';
import { appendEvents, openTempLake, tableRows } from '../engine/test-support.js';
import type { Lake } from '../lake/lake.js';
import { listAlerts } from '../alerts/alerts.js';
import { detectionQueries, loadDetections } from './registry.js';
import { csvIocsRelation } from '../intel/csv.js';
import { mergeIocs } from '../intel/iocs.js';

const T0 = Date.UTC(2026, 0, 10, 0, 0, 0);
const H = 3600_000;
const D = 24 * H;

async function detect(lake: Lake, only: string[], detect: Record<string, unknown> = {}) {
  const set = await loadDetections(detect, { only, rulesDir: '/nonexistent' });
  return new Pipeline(lake, detectionQueries(set)).runAvailableNow();
}

const asOf = (org: string) => ({ as_number: 64500, as_org: org, as_network: '198.51.100.0/24' });

test('vulnerable_services: ports, known servers by IP and CIDR (v4 and v6), host names', async () => {
  const t = await openTempLake();
  try {
    const ev = (aid: string, aip: string, LocalPort: number, dt = 0) => ({
      aid,
      aip,
      LocalPort,
      timestamp: T0 + dt,
      id: `e-${aid}`,
      cid: 'c1',
      aip_geo: { country: 'X', country_code: 'XX', city: 'Y', latitude: 1.5, longitude: 2.5 },
      aip_as: asOf('Example AS'),
    });
    await appendEvents(t.lake, 'NetworkListenIP4', [
      ev('A', '203.0.113.10', 3389),
      ev('B', '10.1.2.3', 3389),
      ev('E', '203.0.113.11', 8080),
      ev('F', '192.0.2.5', 445),
      ev('G', '192.0.2.50', 445),
    ]);
    await appendEvents(t.lake, 'NetworkListenIP6', [
      ev('C', '2001:db8::5', 445),
      ev('D', '2001:db9::5', 1494),
    ]);
    await appendEvents(t.lake, 'aidmaster', [{ aid: 'A', ComputerName: 'WS-A', timestamp: T0 }]);
    const cfg = { known_servers: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.5'] };
    await detect(t.lake, ['vulnerable_services'], cfg);
    const rows = await tableRows(t.lake, 'vulnerable_services', 'aid');
    assert.deepEqual(
      rows.map((r) => [r.aid, r.aip, Number(r.LocalPort), r.ComputerName]),
      [
        ['A', '203.0.113.10', 3389, 'WS-A'],
        ['D', '2001:db9::5', 1494, null],
        ['G', '192.0.2.50', 445, null],
      ],
    );
    assert.deepEqual((rows[0].aip_as as { as_org: string }).as_org, 'Example AS');
    let alerts = await listAlerts(t.lake, { detection: 'vulnerable_services' });
    assert.deepEqual(
      alerts.map((a) => [a.aid, a.host, a.severity]),
      [
        ['A', 'WS-A', 'high'],
        ['D', null, 'high'],
        ['G', null, 'high'],
      ],
    );
    assert.equal(alerts[0].evidence_table, 'networklistenip4');
    assert.equal((alerts[0].evidence as { aip: string }).aip, '203.0.113.10');
    // Same host and port again the same day: one alert per (aid, port, day); the table keeps every event.
    await appendEvents(t.lake, 'NetworkListenIP4', [ev('A', '203.0.113.10', 3389, 2 * H)]);
    await detect(t.lake, ['vulnerable_services'], cfg);
    alerts = await listAlerts(t.lake, { detection: 'vulnerable_services' });
    assert.equal(alerts.length, 3);
    assert.equal((await tableRows(t.lake, 'vulnerable_services')).length, 4);
  } finally {
    await t.cleanup();
  }
});

test('new_logon_location: MERGE into logon_locations, alerts from its change feed, learning period', async () => {
  const t = await openTempLake();
  try {
    const logon = (user: string, org: string, at: number) => ({
      UserName: user,
      aid: `aid-${user}`,
      aip: '198.51.100.7',
      timestamp: at,
      aip_as: asOf(org),
    });
    await appendEvents(t.lake, 'UserLogon', [
      logon('alice', 'Comcast', T0),
      logon('alice', 'Verizon', T0 + 2 * H), // learning period: baseline
      logon('carol', '', T0), // no network: dropped by expectation
    ]);
    await detect(t.lake, ['new_logon_location']);
    assert.equal((await listAlerts(t.lake)).length, 0);
    await appendEvents(t.lake, 'UserLogon', [
      logon('alice', 'Comcast', T0 + 3 * D),
      logon('alice', 'EvilNet', T0 + 3 * D + H),
      logon('bob', 'X', T0 + 5 * D), // bob's first-ever logon
      logon('bob', 'Y', T0 + 5 * D + 23 * H), // still bob's learning day
    ]);
    await appendEvents(t.lake, 'UserLogon', [
      logon('bob', 'Z', T0 + 6 * D + H),
      logon('alice', 'EvilNet', T0 + 4 * D),
    ]);
    await detect(t.lake, ['new_logon_location']);
    const alerts = await listAlerts(t.lake);
    assert.deepEqual(
      alerts.map((a) => [a.user, a.dedup_key]),
      [
        ['alice', 'alice|EvilNet'],
        ['bob', 'bob|Z'],
      ],
    );
    assert.equal(
      alerts[0].description,
      "User alice has logged in from a new network 'EvilNet' at 2026-01-13T01:00:00.000Z",
    );
    const loc = await tableRows(t.lake, 'logon_locations', 'UserName, network');
    assert.deepEqual(
      loc.map((r) => [r.UserName, r.network, String(r.last_used).replace(/\+00$/, '')]),
      [
        ['alice', 'Comcast', '2026-01-13 00:00:00'],
        ['alice', 'EvilNet', '2026-01-14 00:00:00'],
        ['alice', 'Verizon', '2026-01-10 02:00:00'],
        ['bob', 'X', '2026-01-15 00:00:00'],
        ['bob', 'Y', '2026-01-15 23:00:00'],
        ['bob', 'Z', '2026-01-16 01:00:00'],
      ],
    );
  } finally {
    await t.cleanup();
  }
});

test('ioc_match: generated from the mapping, validity window bounds, 24 h dedup per (aid, type, ioc)', async () => {
  const t = await openTempLake();
  try {
    const iso = (ms: number) => new Date(ms).toISOString();
    const H1 = 'aa'.repeat(32);
    const csv = path.join(t.dir, 'iocs.csv');
    await writeFile(
      csv,
      [
        'dataset,ioc,ioc_type,ioc_id,first_seen,last_seen,description',
        `feedA,${H1.toUpperCase()},FileHash-SHA256,i1,${iso(T0)},${iso(T0 + 10 * D)},bad hash`,
        `feedB,Evil.Example,hostname,i2,${iso(T0)},,bad host`,
        `feedC,198.51.100.66,IPv4,i3,${T0 + 5 * D},,bad ip`,
      ].join('\n'),
    );
    await mergeIocs(t.lake, await csvIocsRelation(t.lake.db, csv));
    const iocs = await tableRows(t.lake, 'iocs', 'ioc_id');
    assert.deepEqual(
      iocs.map((r) => [r.ioc, r.ioc_type, String(r.first_seen).replace(/\+00$/, '')]),
      [
        [H1, 'FileHash-SHA256', '2026-01-10 00:00:00'],
        ['evil.example', 'hostname', '2026-01-10 00:00:00'],
        ['198.51.100.66', 'IPv4', '2026-01-15 00:00:00'],
      ],
    );
    const pr = (aid: string, hash: string, at: number) => ({
      aid,
      cid: 'c',
      aip: '203.0.113.1',
      id: `${aid}-${at}`,
      timestamp: at,
      SHA256HashData: hash,
      MD5HashData: '',
    });
    await appendEvents(t.lake, 'ProcessRollup2', [
      pr('A', H1.toUpperCase(), T0 + D),
      pr('A', H1, T0 + D + 2 * H), // same key within 24 h: no second match
      pr('A', H1, T0 + 10 * D), // = last_seen: inside (inclusive), > 24 h later: new match
      pr('B', H1, T0 + 10 * D + 1), // 1 ms after last_seen: outside
      pr('E', H1, T0 - 1), // 1 ms before first_seen: outside
    ]);
    await appendEvents(t.lake, 'DnsRequest', [
      {
        aid: 'C',
        cid: 'c',
        aip: '203.0.113.1',
        id: 'd1',
        timestamp: T0 + 2 * D,
        DomainName: 'Evil.Example.',
        DomainName_psl: { registered_domain: 'evil.example', public_suffix: 'example', subdomain: '' },
        FirstIP4Record: '',
      },
    ]);
    await appendEvents(t.lake, 'NetworkConnectIP4', [
      {
        aid: 'D',
        cid: 'c',
        aip: '203.0.113.1',
        id: 'n1',
        timestamp: T0 + 5 * D - 1,
        RemoteAddressIP4: '198.51.100.66',
      },
      {
        aid: 'D',
        cid: 'c',
        aip: '203.0.113.1',
        id: 'n2',
        timestamp: T0 + 5 * D,
        RemoteAddressIP4: '198.51.100.66',
      },
    ]);
    const reports = await detect(t.lake, ['ioc_match']);
    const alerts = await listAlerts(t.lake, { detection: 'ioc_match' });
    assert.deepEqual(
      alerts.map((a) => [a.aid, a.event_time, (a.evidence as { ioc_type: string }).ioc_type]),
      [
        ['A', '2026-01-11T00:00:00.000Z', 'FileHash-SHA256'],
        ['C', '2026-01-12T00:00:00.000Z', 'hostname'],
        ['D', '2026-01-15T00:00:00.000Z', 'IPv4'],
        ['A', '2026-01-20T00:00:00.000Z', 'FileHash-SHA256'],
      ],
    );
    assert.equal((await tableRows(t.lake, 'matched_iocs')).length, 4);
    const m = reports.find((r) => r.queryId === 'ioc_match')!.metrics;
    assert.ok((m['expect.valid_iocs.failed'] ?? 0) >= 2, 'empty MD5HashData/FirstIP4Record dropped');
    assert.equal(m['dedup.ioc_match.duplicates'], 1);

    // A later batch: the key seen 9 days ago expired from state; a fresh sighting is a new alert,
    // a sighting within 24 h of the last alert is not.
    await appendEvents(t.lake, 'DnsRequest', [
      {
        aid: 'C',
        cid: 'c',
        aip: '203.0.113.1',
        id: 'd2',
        timestamp: T0 + 11 * D,
        DomainName: 'evil.example',
      },
      {
        aid: 'D',
        cid: 'c',
        aip: '203.0.113.1',
        id: 'd3',
        timestamp: T0 + 5 * D + H,
        FirstIP4Record: '198.51.100.66',
      },
    ]);
    await detect(t.lake, ['ioc_match']);
    const after = await listAlerts(t.lake, { detection: 'ioc_match' });
    assert.deepEqual(
      after.map((a) => [a.aid, a.event_time]),
      [
        ['A', '2026-01-11T00:00:00.000Z'],
        ['C', '2026-01-12T00:00:00.000Z'],
        ['D', '2026-01-15T00:00:00.000Z'],
        ['A', '2026-01-20T00:00:00.000Z'],
        ['C', '2026-01-21T00:00:00.000Z'],
      ],
    );
    // Running again adds nothing.
    assert.deepEqual(await detect(t.lake, ['ioc_match']), []);
  } finally {
    await t.cleanup();
  }
});

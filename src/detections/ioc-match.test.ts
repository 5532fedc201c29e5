import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pipeline } from '../engine/pipeline.js';
import { appendEvents, openTempLake, tableRows } from '../engine/test-support.js';
import type { Lake } from '../lake/lake.js';
import { listAlerts } from '../alerts/alerts.js';
import { Db, literal } from '../sql/duckdb.js';
import { detectionQueries, loadDetections } from './registry.js';
import { DEFAULT_IOC_MAPPINGS } from './detection.js';
import { ipv4IntSql, ipv6IntSql } from './ioc-values.js';
import { writeIocs } from './ioc-test-support.js';

const T0 = Date.UTC(2026, 0, 10);
const D = 24 * 3600_000;

const MAPPINGS = { ...DEFAULT_IOC_MAPPINGS, networkconnectip6: { RemoteAddressIP6: 'IPv6' } };

async function detect(lake: Lake) {
  const set = await loadDetections(
    { ioc_mappings: MAPPINGS },
    { only: ['ioc_match'], rulesDir: '/nonexistent' },
  );
  return new Pipeline(lake, detectionQueries(set)).runAvailableNow();
}

const dns = (aid: string, name: string, registered?: string) => ({
  aid,
  cid: 'c',
  aip: '192.0.2.1',
  id: `dns-${aid}`,
  timestamp: T0 + D,
  DomainName: name,
  DomainName_psl: { registered_domain: registered ?? name.split('.').slice(-2).join('.') },
});
const conn = (aid: string, ip: string, field = 'RemoteAddressIP4') => ({
  aid,
  cid: 'c',
  aip: '192.0.2.1',
  id: `net-${aid}`,
  timestamp: T0 + D,
  [field]: ip,
});

test('ioc values: IPv4/IPv6 text to integers, malformed → NULL', async () => {
  const db = await Db.open();
  try {
    const v4 = async (s: string) =>
      (await db.all<{ v: bigint | null }>(`SELECT ${ipv4IntSql(literal(s))} AS v`))[0].v;
    assert.equal(await v4('0.0.0.0'), 0n);
    assert.equal(await v4('198.18.0.1'), (198n << 24n) | (18n << 16n) | 1n);
    assert.equal(await v4('255.255.255.255'), 0xffffffffn);
    for (const bad of ['256.1.1.1', '1.2.3', '1.2.3.4.5', 'a.b.c.d', '', '1..2.3'])
      assert.equal(await v4(bad), null, bad);
    const v6 = async (s: string) =>
      (await db.all<{ v: bigint | null }>(`SELECT CAST(${ipv6IntSql(literal(s))} AS VARCHAR) AS v`))[0].v;
    assert.equal(await v6('::1'), '1');
    assert.equal(await v6('1::'), String(1n << 112n));
    assert.equal(await v6('2001:db8::1'), String((0x2001n << 112n) | (0xdb8n << 96n) | 1n));
    assert.equal(await v6('2001:DB8:0:0:0:0:0:1'), await v6('2001:db8::1'));
    assert.equal(await v6('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), String((1n << 128n) - 1n));
    for (const bad of ['1:2:3:4:5:6:7:8:9', 'gggg::1', '1:::2', '12345::1', '1.2.3.4', '1:2:3:4:5:6:7', ''])
      assert.equal(await v6(bad), null, bad);
  } finally {
    db.close();
  }
});

test('ioc_match: domain IoCs match subdomains at label boundaries, CIDR IoCs the addresses inside, allow-listed never', async () => {
  const t = await openTempLake('talon-iocmatch-');
  try {
    await writeIocs(t.lake, [
      { ioc: 'evil.com', ioc_type: 'domain' },
      // Not a registered domain: only names under it, not its parent or siblings.
      { ioc: 'b.bad.org', ioc_type: 'domain' },
      { ioc: 'exact.host.net', ioc_type: 'hostname' },
      { ioc: '198.18.0.0/15', ioc_type: 'IPv4-CIDR' },
      { ioc: '2001:db8:aa::/48', ioc_type: 'IPv6-CIDR' },
      { ioc: '8.8.8.8', ioc_type: 'IPv4', allow_listed: true },
      { ioc: 'allowed.net', ioc_type: 'domain', allow_listed: true },
      { ioc: '10.0.0.0/8', ioc_type: 'IPv4-CIDR', allow_listed: true },
      { ioc: '9.9.9.9', ioc_type: 'IPv4', allow_listed: null },
    ]);
    await appendEvents(t.lake, 'DnsRequest', [
      dns('d1', 'a.b.evil.com'),
      dns('d2', 'evil.com'),
      dns('d3', 'A.B.EVIL.COM.', 'evil.com'),
      dns('d4', 'notevil.com'),
      dns('d5', 'evil.com.au', 'evil.com.au'),
      dns('d6', 'x.b.bad.org', 'bad.org'),
      dns('d7', 'bad.org'),
      dns('d8', 'c.bad.org', 'bad.org'),
      dns('d9', 'xb.bad.org', 'bad.org'),
      dns('d10', 'www.allowed.net'),
      dns('d11', 'sub.exact.host.net', 'host.net'),
      dns('d12', 'exact.host.net', 'host.net'),
    ]);
    await appendEvents(t.lake, 'NetworkConnectIP4', [
      conn('n1', '198.18.0.0'),
      conn('n2', '198.19.255.255'),
      conn('n3', '198.17.255.255'),
      conn('n4', '198.20.0.0'),
      conn('n5', '8.8.8.8'),
      conn('n6', '9.9.9.9'),
      conn('n7', '10.1.2.3'),
      conn('n8', 'not-an-ip'),
    ]);
    await appendEvents(t.lake, 'NetworkConnectIP6', [
      conn('v1', '2001:db8:aa::1', 'RemoteAddressIP6'),
      conn('v2', '2001:DB8:AA:FFFF:FFFF:FFFF:FFFF:FFFF', 'RemoteAddressIP6'),
      conn('v3', '2001:db8:ab::', 'RemoteAddressIP6'),
      conn('v4', '2001:db8:a9:ffff:ffff:ffff:ffff:ffff', 'RemoteAddressIP6'),
    ]);
    const reports = await detect(t.lake);
    const alerts = await listAlerts(t.lake, { detection: 'ioc_match' });
    assert.deepEqual(alerts.map((a) => a.dedup_key).sort(), [
      'd12|hostname|exact.host.net',
      'd1|domain|evil.com',
      'd2|domain|evil.com',
      'd3|domain|evil.com',
      'd6|domain|b.bad.org',
      'n1|IPv4-CIDR|198.18.0.0/15',
      'n2|IPv4-CIDR|198.18.0.0/15',
      'n6|IPv4|9.9.9.9',
      'v1|IPv6-CIDR|2001:db8:aa::/48',
      'v2|IPv6-CIDR|2001:db8:aa::/48',
    ]);
    // d2 matches evil.com through DomainName and DomainName_psl.registered_domain: one row.
    const matched = await tableRows(t.lake, 'matched_iocs', 'aid');
    assert.equal(matched.filter((m) => m.aid === 'd2').length, 1);
    assert.equal(matched.length, 10);
    // The IoC's feed fields come with every match (looked up after the key-only hash join).
    assert.ok(
      matched.every((r) => r.dataset === 'test' && r.ioc_description === 'test ioc' && r.ioc_id),
      'ioc details',
    );
    const m = reports.find((r) => r.queryId === 'ioc_match')!.metrics;
    assert.equal(
      m['expect.valid_iocs.passed'],
      12 * 2 + 8 + 4,
      'FirstIP4Record is not a column of these DnsRequest rows',
    );
  } finally {
    await t.cleanup();
  }
});

test('ioc_match: an iocs table without allow_listed (before the intel change) still matches', async () => {
  const t = await openTempLake('talon-iocmatch-noallow-');
  try {
    await writeIocs(t.lake, [{ ioc: 'evil.com', ioc_type: 'domain' }], false);
    await appendEvents(t.lake, 'DnsRequest', [dns('d1', 'www.evil.com')]);
    await detect(t.lake);
    assert.deepEqual(
      (await listAlerts(t.lake)).map((a) => a.dedup_key),
      ['d1|domain|evil.com'],
    );
  } finally {
    await t.cleanup();
  }
});

test('ioc_match: CIDR IoCs of many prefix lengths (range join) match the same as few (hash join)', async () => {
  const t = await openTempLake('talon-iocmatch-cidrs-');
  try {
    // /20 … /29 nested around 203.0.112.0: ten prefix lengths, above the hash-join limit.
    await writeIocs(
      t.lake,
      Array.from({ length: 10 }, (_, k) => ({ ioc: `203.0.112.0/${20 + k}`, ioc_type: 'IPv4-CIDR' })),
    );
    await appendEvents(t.lake, 'NetworkConnectIP4', [
      conn('a', '203.0.112.7'), // inside all ten
      conn('b', '203.0.127.255'), // last address of the /20 only
      conn('c', '203.0.128.0'), // just past the /20
      conn('d', '203.0.111.255'), // just before
    ]);
    await detect(t.lake);
    const keys = (await listAlerts(t.lake)).map((a) => a.dedup_key);
    assert.equal(keys.filter((k) => k.startsWith('a|')).length, 10);
    assert.deepEqual(
      keys.filter((k) => !k.startsWith('a|')),
      ['b|IPv4-CIDR|203.0.112.0/20'],
    );
  } finally {
    await t.cleanup();
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pipeline } from '../engine/pipeline.js';
import { appendEvents, openTempLake, tableRows } from '../engine/test-support.js';
import { Lake } from '../lake/lake.js';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { listAlerts } from '../alerts/alerts.js';
import { Db, literal } from '../sql/duckdb.js';
import { detectionQueries, loadDetections } from './registry.js';
import { DEFAULT_IOC_MAPPINGS } from './detection.js';
import { iocIndexCacheStats, ipv4IntSql, ipv6IntSql, releaseIocIndexes } from './ioc-values.js';
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

/** The cached-index temp tables present in a DuckDB instance. */
async function cachedIndexTables(db: Db): Promise<string[]> {
  const rows = await db.all<{ t: string }>(
    `SELECT table_name AS t FROM duckdb_tables() WHERE temporary AND table_name LIKE '__talon_iocidx_%' ORDER BY 1`,
  );
  return rows.map((r) => r.t);
}

test('ioc_match: the IoC index is kept between batches of one iocs version and rebuilt when iocs changes', async () => {
  const t = await openTempLake('talon-iocmatch-cache-');
  try {
    await writeIocs(t.lake, [
      { ioc: 'evil.com', ioc_type: 'domain' },
      { ioc: '198.18.0.0/15', ioc_type: 'IPv4-CIDR' },
    ]);
    // One Pipeline for the whole test: a long-running detector.
    const set = await loadDetections(
      { ioc_mappings: MAPPINGS },
      { only: ['ioc_match'], rulesDir: '/nonexistent' },
    );
    const pipeline = new Pipeline(t.lake, detectionQueries(set));
    const keys = async () =>
      (await listAlerts(t.lake, { detection: 'ioc_match' })).map((a) => a.dedup_key).sort();

    const b0 = { ...iocIndexCacheStats };
    await appendEvents(t.lake, 'DnsRequest', [dns('a1', 'www.evil.com'), dns('a2', 'new-bad.org')]);
    await pipeline.runAvailableNow();
    assert.deepEqual(await keys(), ['a1|domain|evil.com']);
    assert.equal(iocIndexCacheStats.builds - b0.builds, 1, 'first batch builds the index');
    const firstTables = await cachedIndexTables(t.lake.db);
    assert.ok(firstTables.length >= 2, `active + domain/CIDR tables: ${firstTables.join(', ')}`);
    assert.ok(!firstTables.some((n) => n.endsWith('_ioc_special')), 'build-only table dropped');

    // Same iocs version: two more batches reuse the index, nothing rebuilt.
    await appendEvents(t.lake, 'DnsRequest', [dns('b1', 'x.evil.com')]);
    await pipeline.runAvailableNow();
    await appendEvents(t.lake, 'NetworkConnectIP4', [conn('b2', '198.19.0.1')]);
    await pipeline.runAvailableNow();
    assert.equal(iocIndexCacheStats.builds - b0.builds, 1, 'no rebuild for the same iocs version');
    assert.equal(iocIndexCacheStats.reuses - b0.reuses, 2, 'reused by both later batches');
    assert.deepEqual(await cachedIndexTables(t.lake.db), firstTables);
    assert.deepEqual(await keys(), [
      'a1|domain|evil.com',
      'b1|domain|evil.com',
      'b2|IPv4-CIDR|198.18.0.0/15',
    ]);

    // A new IoC loaded between two batches matches in the next one: the index is rebuilt for
    // the new version, and the old version's tables are dropped.
    await writeIocs(t.lake, [{ ioc: 'new-bad.org', ioc_type: 'domain' }]);
    await appendEvents(t.lake, 'DnsRequest', [dns('c1', 'www.new-bad.org'), dns('c2', 'y.evil.com')]);
    await pipeline.runAvailableNow();
    assert.equal(iocIndexCacheStats.builds - b0.builds, 2, 'rebuilt for the new iocs version');
    assert.deepEqual(await keys(), [
      'a1|domain|evil.com',
      'b1|domain|evil.com',
      'b2|IPv4-CIDR|198.18.0.0/15',
      'c1|domain|new-bad.org',
      'c2|domain|evil.com',
    ]);
    const secondTables = await cachedIndexTables(t.lake.db);
    assert.equal(secondTables.length, firstTables.length);
    assert.ok(
      secondTables.every((n) => !firstTables.includes(n)),
      'the old version is dropped',
    );

    // An allow-list flip is a new version too: the IoC stops matching at once.
    await writeIocs(t.lake, [{ ioc: 'evil.com', ioc_type: 'domain', allow_listed: true }]);
    await appendEvents(t.lake, 'DnsRequest', [dns('d1', 'z.evil.com')]);
    await pipeline.runAvailableNow();
    assert.equal(iocIndexCacheStats.builds - b0.builds, 3);
    assert.ok(!(await keys()).includes('d1|domain|evil.com'));

    await releaseIocIndexes(t.lake.db);
    assert.deepEqual(await cachedIndexTables(t.lake.db), []);
  } finally {
    await t.cleanup();
  }
});

test("ioc_match: lakes sharing one DuckDB instance never use each other's cached IoC index", async () => {
  const t = await openTempLake('talon-iocmatch-shared-');
  const db = await Db.open();
  const lakes: Lake[] = [];
  try {
    // Same iocs version number (0) in both lakes, different IoCs.
    for (const [k, ioc] of ['one.example', 'two.example'].entries()) {
      const lake = await Lake.open(path.join(t.dir, `shared-${k}`), { db });
      lakes.push(lake);
      await writeIocs(lake, [{ ioc, ioc_type: 'domain' }]);
      await appendEvents(lake, 'DnsRequest', [dns('s1', 'www.one.example'), dns('s2', 'www.two.example')]);
    }
    for (const lake of lakes) await detect(lake);
    assert.deepEqual(
      (await listAlerts(lakes[0])).map((a) => a.dedup_key),
      ['s1|domain|one.example'],
    );
    assert.deepEqual(
      (await listAlerts(lakes[1])).map((a) => a.dedup_key),
      ['s2|domain|two.example'],
    );
    await releaseIocIndexes(db);
    assert.deepEqual(await cachedIndexTables(db), []);
  } finally {
    for (const lake of lakes) lake.close();
    db.close();
    await t.cleanup();
  }
});

test('ioc_match: a replayed batch matches against the iocs version in its offsets, cached or not', async () => {
  const t = await openTempLake('talon-iocmatch-replay-');
  try {
    await writeIocs(t.lake, [{ ioc: 'evil.com', ioc_type: 'domain' }]);
    // The CLI's detections (default mappings), so the killed run and this process plan the
    // same query.
    const set = await loadDetections({}, { only: ['ioc_match'], rulesDir: '/nonexistent' });
    const keys = async () =>
      (await listAlerts(t.lake, { detection: 'ioc_match' })).map((a) => a.dedup_key).sort();
    await appendEvents(t.lake, 'DnsRequest', [dns('a1', 'www.evil.com')]);
    await new Pipeline(t.lake, detectionQueries(set)).runAvailableNow();
    const b0 = { ...iocIndexCacheStats };
    // Batch 1 is planned (offsets written, iocs at the old version) and the process killed.
    await appendEvents(t.lake, 'DnsRequest', [dns('b1', 'www.new-bad.org'), dns('b2', 'x.evil.com')]);
    const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');
    const killed = spawnSync(
      process.execPath,
      [cli, 'detect', '--lake', path.join(t.dir, 'lake'), '--detection', 'ioc_match'],
      {
        cwd: t.dir,
        env: { ...process.env, TALON_LOG: 'silent', TALON_CRASH_AT: 'after-offsets:ioc_match:1' },
        encoding: 'utf8',
      },
    );
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    // A new IoC arrives before the restart; the replay must not see it.
    await writeIocs(t.lake, [{ ioc: 'new-bad.org', ioc_type: 'domain' }]);
    const reports = await new Pipeline(t.lake, detectionQueries(set)).runAvailableNow();
    assert.ok(
      reports.some((r) => r.replayed && r.batchId === 1),
      'batch 1 replayed',
    );
    assert.deepEqual(await keys(), ['a1|domain|evil.com', 'b2|domain|evil.com']);
    assert.equal(iocIndexCacheStats.builds - b0.builds, 0, 'the replay reused the index of its own version');
    // The next batch plans the new version: rebuilt, and the new IoC matches.
    await appendEvents(t.lake, 'DnsRequest', [dns('c1', 'www.new-bad.org')]);
    await new Pipeline(t.lake, detectionQueries(set)).runAvailableNow();
    assert.equal(iocIndexCacheStats.builds - b0.builds, 1);
    assert.deepEqual(await keys(), ['a1|domain|evil.com', 'b2|domain|evil.com', 'c1|domain|new-bad.org']);
  } finally {
    await t.cleanup();
  }
});

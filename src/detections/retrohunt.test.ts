import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pipeline } from '../engine/pipeline.js';
import { appendEvents, openTempLake } from '../engine/test-support.js';
import type { Lake } from '../lake/lake.js';
import { listAlerts } from '../alerts/alerts.js';
import { detectionQueries, loadDetections } from './registry.js';
import { DEFAULT_IOC_MAPPINGS, detectSettings } from './detection.js';
import { writeIocs } from './ioc-test-support.js';
import { retroHuntQuery } from './retrohunt.js';
import { loadIocText } from '../intel/load.js';

const H = 3600_000;
const D = 24 * H;
const EVIL_IP = '203.0.113.66';
const EVIL_HASH = 'c'.repeat(64);

async function run(
  lake: Lake,
  scans: [string, number, number][] = [],
  extraMappings: Record<string, Record<string, string>> = {},
) {
  const cfg = { ioc_mappings: { ...DEFAULT_IOC_MAPPINGS, ...extraMappings } };
  const set = await loadDetections(cfg, { only: ['ioc_match'], rulesDir: '/nonexistent' });
  const queries = [
    ...detectionQueries(set),
    retroHuntQuery(detectSettings(cfg), { onScan: (t, n, total) => scans.push([t, n, total]) }),
  ];
  return new Pipeline(lake, queries).runAvailableNow();
}

test('retro-hunt: events first, IoC later → exactly one retro alert; look-back bounds; replays add nothing', async () => {
  const t = await openTempLake('talon-retro-');
  try {
    const now = Date.now();
    const conn = (aid: string, ip: string, ago: number) => ({
      aid,
      id: `e-${aid}-${ago}`,
      cid: 'c1',
      aip: '192.0.2.1',
      RemoteAddressIP4: ip,
      timestamp: now - ago,
    });
    // History: host A talked to the IP twice 3 days ago (one alert), host B 40 days ago
    // (outside the 30-day look-back), host C to an unrelated IP; one commit per day so the
    // table has several partitions.
    await appendEvents(t.lake, 'NetworkConnectIP4', [conn('B', EVIL_IP, 40 * D)]);
    await appendEvents(t.lake, 'NetworkConnectIP4', [
      conn('A', EVIL_IP, 3 * D),
      conn('A', EVIL_IP, 3 * D - H),
    ]);
    await appendEvents(t.lake, 'NetworkConnectIP4', [conn('C', '198.51.100.200', 2 * D)]);
    await appendEvents(t.lake, 'SyntheticProcessRollup2', [
      {
        aid: 'D',
        id: 'p1',
        cid: 'c1',
        aip: '192.0.2.1',
        SHA256HashData: EVIL_HASH.toUpperCase(),
        MD5HashData: 'e'.repeat(32),
        timestamp: now - 5 * D,
      },
    ]);
    await appendEvents(t.lake, 'aidmaster', [{ aid: 'A', ComputerName: 'WS-A', timestamp: now - 50 * D }]);
    // Live matching runs before the IoCs exist: nothing.
    await run(t.lake);
    assert.equal((await listAlerts(t.lake)).length, 0);

    // Published today (first_seen = now): live matching would never see these old events.
    const r = await loadIocText(t.lake, `${EVIL_IP}\n${EVIL_HASH}\n`, 'text', {
      type: 'auto',
      dataset: 'feedX',
    });
    assert.equal(r.stored, 2);
    const scans: [string, number, number][] = [];
    await run(t.lake, scans);
    const alerts = await listAlerts(t.lake);
    assert.deepEqual(alerts.map((a) => [a.detection, a.aid, a.host, a.tags.includes('retro')]).sort(), [
      ['ioc_match', 'A', 'WS-A', true],
      ['ioc_match', 'D', null, true],
    ]);
    const a = alerts.find((x) => x.aid === 'A')!;
    assert.equal(a.dedup_key, `A|IPv4|${EVIL_IP}`);
    assert.equal(new Date(a.event_time + (a.event_time.endsWith('Z') ? '' : 'Z')).getTime(), now - 3 * D);
    assert.equal((a.evidence as { retro?: boolean }).retro, true);
    assert.match(a.title, /retro-hunt/);
    // Partition pruning: the 40-day-old partition of networkconnectip4 is not read.
    const net = scans.find(([tb]) => tb === 'networkconnectip4')!;
    assert.ok(net[1] < net[2], `scanned ${net[1]} of ${net[2]} files`);

    // Running again (and loading the same feed again) adds nothing.
    await loadIocText(t.lake, `${EVIL_IP}\n${EVIL_HASH}\n`, 'text', { type: 'auto', dataset: 'feedX' });
    await run(t.lake);
    assert.equal((await listAlerts(t.lake)).length, 2);
  } finally {
    await t.cleanup();
  }
});

test('retro-hunt and live matching of the same (aid, ioc_type, ioc) give one alert', async () => {
  const t = await openTempLake('talon-retro-live-');
  try {
    const now = Date.now();
    // Aligned inside one 24 h dedup bucket: both the live match and the retro match land in it.
    const bucketStart = Math.floor((now - 2 * D) / D) * D;
    await appendEvents(t.lake, 'NetworkConnectIP4', [
      {
        aid: 'A',
        id: 'x1',
        cid: 'c',
        aip: '192.0.2.1',
        RemoteAddressIP4: EVIL_IP,
        timestamp: bucketStart + H,
      },
    ]);
    // The feed says the IoC was first seen 10 days ago: live matching matches this event too.
    const otx = {
      id: 'p',
      indicators: [{ indicator: EVIL_IP, type: 'IPv4', created: new Date(now - 10 * D).toISOString() }],
    };
    await loadIocText(t.lake, JSON.stringify(otx), 'otx');
    await run(t.lake);
    const alerts = await listAlerts(t.lake);
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0].dedup_key, `A|IPv4|${EVIL_IP}`);
  } finally {
    await t.cleanup();
  }
});

test('retro-hunt: an IPv4 CIDR IoC matches past connections to addresses inside it', async () => {
  const t = await openTempLake('talon-retro-cidr-');
  try {
    const now = Date.now();
    await appendEvents(t.lake, 'NetworkConnectIP4', [
      {
        aid: 'A',
        id: 'c1',
        cid: 'c',
        aip: '192.0.2.1',
        RemoteAddressIP4: '198.18.5.9',
        timestamp: now - 2 * D,
      },
      {
        aid: 'B',
        id: 'c2',
        cid: 'c',
        aip: '192.0.2.1',
        RemoteAddressIP4: '198.20.0.1',
        timestamp: now - 2 * D,
      },
    ]);
    const r = await loadIocText(t.lake, '198.18.0.0/15\n', 'text', { type: 'CIDR' });
    assert.deepEqual(r.types, { 'IPv4-CIDR': 1 });
    await run(t.lake);
    const alerts = await listAlerts(t.lake);
    assert.deepEqual(
      alerts.map((a) => a.dedup_key),
      ['A|IPv4-CIDR|198.18.0.0/15'],
    );
  } finally {
    await t.cleanup();
  }
});

test('retro-hunt: domain IoCs hunt past subdomains, IPv6 CIDRs past addresses; allow-listed IoCs hunt nothing', async () => {
  const t = await openTempLake('talon-retro-ext-');
  try {
    const now = Date.now();
    const ev = (aid: string, fields: Record<string, unknown>) => ({
      aid,
      id: `e-${aid}`,
      cid: 'c1',
      aip: '192.0.2.1',
      timestamp: now - 3 * D,
      ...fields,
    });
    await appendEvents(t.lake, 'DnsRequest', [
      ev('A', { DomainName: 'cdn.x.evil.com', DomainName_psl: { registered_domain: 'evil.com' } }),
      ev('B', { DomainName: 'notevil.com', DomainName_psl: { registered_domain: 'notevil.com' } }),
      ev('C', { DomainName: 'www.allowed.net', DomainName_psl: { registered_domain: 'allowed.net' } }),
    ]);
    await appendEvents(t.lake, 'NetworkConnectIP6', [
      ev('V', { RemoteAddressIP6: '2001:db8:aa:1::5' }),
      ev('W', { RemoteAddressIP6: '2001:db8:ab::5' }),
    ]);
    await run(t.lake, [], { networkconnectip6: { RemoteAddressIP6: 'IPv6' } });
    // Published after the events, first_seen now.
    await writeIocs(t.lake, [
      { ioc: 'x.evil.com', ioc_type: 'domain', first_seen: now },
      { ioc: 'allowed.net', ioc_type: 'domain', first_seen: now, allow_listed: true },
      { ioc: '2001:db8:aa::/48', ioc_type: 'IPv6-CIDR', first_seen: now },
    ]);
    await run(t.lake, [], { networkconnectip6: { RemoteAddressIP6: 'IPv6' } });
    const alerts = await listAlerts(t.lake);
    assert.deepEqual(alerts.map((a) => [a.dedup_key, a.tags.includes('retro')]).sort(), [
      ['A|domain|x.evil.com', true],
      ['V|IPv6-CIDR|2001:db8:aa::/48', true],
    ]);
  } finally {
    await t.cleanup();
  }
});

test('retro-hunt: an expired IoC the feed re-publishes is hunted in its new window only; an allow-list flip back hunts again', async () => {
  const t = await openTempLake('talon-retro-reactivate-');
  try {
    const now = Date.now();
    const conn = (aid: string, ago: number) => ({
      aid,
      id: `e-${aid}-${ago}`,
      cid: 'c1',
      aip: '192.0.2.1',
      RemoteAddressIP4: EVIL_IP,
      timestamp: now - ago,
    });
    const ioc = { ioc: EVIL_IP, ioc_type: 'IPv4', first_seen: now - 20 * D };
    // Valid from 20 to 15 days ago; A is seen inside that window, again after it expired, and
    // B only after it expired.
    await writeIocs(t.lake, [{ ...ioc, last_seen: now - 15 * D }]);
    await appendEvents(t.lake, 'NetworkConnectIP4', [
      conn('A', 18 * D),
      conn('A', 10 * D),
      conn('B', 12 * D),
    ]);
    await run(t.lake);
    const keys = async () =>
      (await listAlerts(t.lake))
        .map((a) => `${a.dedup_key}@${Math.round((now - Date.parse(a.event_time)) / D)}d`)
        .sort();
    assert.deepEqual(await keys(), [`A|IPv4|${EVIL_IP}@18d`]);

    // The feed re-publishes it: valid until 5 days from now. Events after the old end become
    // matches; the one inside the old window is not alerted twice.
    await writeIocs(t.lake, [{ ...ioc, last_seen: now + 5 * D }]);
    await run(t.lake);
    assert.deepEqual(await keys(), [
      `A|IPv4|${EVIL_IP}@10d`,
      `A|IPv4|${EVIL_IP}@18d`,
      `B|IPv4|${EVIL_IP}@12d`,
    ]);
    const retro = (await listAlerts(t.lake)).filter((a) => a.tags.includes('retro'));
    assert.equal(retro.length, 2);

    // Re-published again without extending anything: nothing new.
    await writeIocs(t.lake, [{ ...ioc, last_seen: now + 5 * D }]);
    await run(t.lake);
    assert.equal((await listAlerts(t.lake)).length, 3);

    // Allow-listed: C's connection is not matched live; cleared again: the retro-hunt finds it.
    await writeIocs(t.lake, [{ ...ioc, last_seen: now + 5 * D, allow_listed: true }]);
    await appendEvents(t.lake, 'NetworkConnectIP4', [conn('C', 1 * D)]);
    await run(t.lake);
    assert.equal((await listAlerts(t.lake)).length, 3);
    await writeIocs(t.lake, [{ ...ioc, last_seen: now + 5 * D, allow_listed: false }]);
    await run(t.lake);
    assert.deepEqual(await keys(), [
      `A|IPv4|${EVIL_IP}@10d`,
      `A|IPv4|${EVIL_IP}@18d`,
      `B|IPv4|${EVIL_IP}@12d`,
      `C|IPv4|${EVIL_IP}@1d`,
    ]);
  } finally {
    await t.cleanup();
  }
});

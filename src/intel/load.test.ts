import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openTempLake } from '../engine/test-support.js';
import type { Lake } from '../lake/lake.js';
import { AllowList, loadIocText } from './load.js';
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

test('allow-list: IPs, CIDRs, parent domains, URL hosts — kept in ioc_sources, never in iocs', async () => {
  const allow = new AllowList(['8.8.8.8', '10.0.0.0/8', 'example.com', '2001:db8::/32']);
  assert.ok(allow.matches({ ioc_type: 'IPv4', ioc: '8.8.8.8' }));
  assert.ok(allow.matches({ ioc_type: 'IPv4', ioc: '10.9.9.9' }));
  assert.ok(!allow.matches({ ioc_type: 'IPv4', ioc: '8.8.4.4' }));
  assert.ok(allow.matches({ ioc_type: 'hostname', ioc: 'www.example.com' }));
  assert.ok(!allow.matches({ ioc_type: 'hostname', ioc: 'notexample.com' }));
  assert.ok(allow.matches({ ioc_type: 'URL', ioc: 'http://cdn.example.com/x' }));
  assert.ok(allow.matches({ ioc_type: 'IPv6', ioc: '2001:db8::9' }));
  assert.ok(allow.matches({ ioc_type: 'IPv4-CIDR', ioc: '10.1.0.0/16' }));
  assert.ok(!allow.matches({ ioc_type: 'IPv4-CIDR', ioc: '8.0.0.0/8' }));
  const t = await openTempLake('talon-intel-allow-');
  try {
    const settings = intelSettings({ intel: { allow_list: ['8.8.8.8', 'example.com'] } });
    const r = await loadIocText(t.lake, '8.8.8.8\n203.0.113.9\nwww.example.com\nevil.example\n', 'text', {
      type: 'auto',
      settings,
      now: NOW,
    });
    assert.equal(r.allowListed, 2);
    assert.deepEqual(r.types, { IPv4: 1, hostname: 1 });
    assert.deepEqual(
      (await rows(t.lake, 'iocs')).map((x) => x.ioc),
      ['203.0.113.9', 'evil.example'],
    );
    const src = await rows(t.lake, 'ioc_sources');
    assert.deepEqual(
      src.filter((s) => s.allow_listed).map((s) => s.ioc),
      ['8.8.8.8', 'www.example.com'],
    );
  } finally {
    await t.cleanup();
  }
});

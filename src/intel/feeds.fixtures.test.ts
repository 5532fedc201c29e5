/**
 * Real feed samples (../shared/fixtures, see SOURCES.md): elastic/integrations ti_abusech,
 * ti_otx, ti_misp pipeline inputs (NDJSON of the API/Filebeat shapes), PyMISP and IntelMQ test
 * events, OASIS STIX 2.1 examples. Each file parses to the expected types and counts, and
 * whatever is not taken is counted with its reason. One file is loaded end to end into a lake.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseFeed } from './feeds/index.js';
import type { FeedFormat } from './feeds/index.js';
import { openTempLake } from '../engine/test-support.js';
import { loadIocFile } from './load.js';
import { fixturesRoot } from '../testing/fixtures.js';

const FIX = fixturesRoot();

interface Expect {
  types: Record<string, number>;
  rejected?: Record<string, number>;
  unsupported?: Record<string, number>;
  skipped?: Record<string, number>;
}

const CASES: [FeedFormat, string, Expect][] = [
  ['threatfox', 'elastic-ti-abusech/threatfox__test-commercial-fields.log', { types: { domain: 2 } }],
  ['urlhaus', 'elastic-ti-abusech/url__test-abusechurl-dump.log', { types: { URL: 2 } }],
  ['urlhaus', 'elastic-ti-abusech/url__test-abusechurl-fulljson.log', { types: { URL: 3 } }],
  [
    'malwarebazaar',
    'elastic-ti-abusech/malwarebazaar__test-malwarebazaar-ndjson.log',
    {
      types: {
        'FileHash-SHA256': 10,
        'FileHash-MD5': 10,
        'FileHash-SHA1': 10,
        'FileHash-IMPHASH': 6,
        'FileHash-TLSH': 10,
        'FileHash-SSDEEP': 10,
      },
    },
  ],
  [
    'otx',
    'elastic-ti-otx/threat__test-otx-sample-ndjson.log',
    {
      types: {
        IPv4: 19,
        'FileHash-MD5': 11,
        hostname: 1,
        'FileHash-SHA256': 32,
        'FileHash-SHA1': 9,
        domain: 8,
        URL: 3,
      },
    },
  ],
  [
    'otx',
    'elastic-ti-otx/pulses_subscribed__test-otx-pulses-subscribed-ndjson.log',
    { types: { 'FileHash-SHA256': 1, domain: 1, IPv4: 1, URL: 2, hostname: 1 } },
  ],
  [
    'otx',
    'intelmq-tests/otx_pulses_subscribed.json',
    {
      types: {
        URL: 6,
        'FileHash-SHA1': 8,
        IPv4: 9,
        'FileHash-SHA256': 24,
        domain: 5,
        hostname: 14,
        'FileHash-MD5': 26,
        email: 1,
        CVE: 1,
      },
      // An OTX "URI" indicator that is only a path ('/woolen/') is not a matchable URL.
      rejected: { 'URL: not parseable': 1 },
    },
  ],
  [
    'misp',
    'elastic-ti-misp/threat_attributes__test-misp-sample-ndjson.log',
    {
      types: { IPv4: 3, 'FileHash-SHA256': 1, 'FileHash-MD5': 1, email: 1, URL: 1 },
      // The sample's first attribute claims type md5 with value 127.0.0.1.
      rejected: { 'FileHash-MD5: not 32 hex digits': 1 },
      unsupported: { 'unsupported type regkey': 1 },
      skipped: { 'MISP: to_ids not set': 5 },
    },
  ],
  ['misp', 'intelmq-tests/misp_event.json', { types: {}, skipped: { 'MISP: to_ids not set': 2 } }],
  [
    'misp',
    'misp-pymisp/57c4445b-c548-4654-af0b-4be3950d210f.json',
    {
      types: { 'FileHash-MD5': 1, 'FileHash-SHA1': 1, 'FileHash-SHA256': 1 },
      unsupported: { 'unsupported type filename': 1, 'unsupported type regkey|value': 1 },
      skipped: { 'MISP: to_ids not set': 4 },
    },
  ],
  [
    'misp',
    'misp-pymisp/existing_event.json',
    {
      types: { domain: 19, 'FileHash-SHA1': 37, IPv4: 12 },
      unsupported: { 'unsupported type filename': 15 },
      skipped: { 'MISP: to_ids not set': 39 },
    },
  ],
  [
    'misp',
    'misp-pymisp/malware_exist.json',
    {
      types: { 'FileHash-MD5': 1, 'FileHash-SHA1': 1, 'FileHash-SHA256': 1 },
      unsupported: { 'unsupported type malware-sample': 1 },
      skipped: { 'MISP: to_ids not set': 2 },
    },
  ],
  ['stix', 'stix21-oasis/indicator-for-c2-ip-address.json', { types: { IPv4: 1 } }],
  ['stix', 'stix21-oasis/indicators-for-C2-with-COA.json', { types: { IPv4: 1, 'FileHash-SHA256': 1 } }],
  [
    'stix',
    'stix21-oasis/malicious-email-indicator-with-attachment.json',
    {
      types: {},
      unsupported: {
        'STIX pattern: operator MATCHES': 1,
        "STIX pattern: pattern syntax: unexpected character '*'": 1,
      },
    },
  ],
  [
    'stix',
    'stix21-oasis/threat-reports__apt1.json',
    {
      types: { 'IPv4-CIDR': 4, domain: 3, 'FileHash-MD5': 3 },
      unsupported: { 'STIX pattern: object path x509-certificate:issuer': 2 },
    },
  ],
  [
    'stix',
    'stix21-oasis/threat-reports__poisonivy.json',
    {
      types: { IPv4: 40, domain: 24 },
      // One indicator's value is "domain autuo.xicp.net" (sic).
      rejected: { 'domain: malformed name': 1 },
      unsupported: { 'STIX pattern: object path file:name': 2 },
    },
  ],
];

for (const [format, file, want] of CASES) {
  test(`${format}: ${file}`, () => {
    const p = parseFeed(format, readFileSync(path.join(FIX, file), 'utf8'));
    const types: Record<string, number> = {};
    for (const r of p.records) types[r.ioc_type] = (types[r.ioc_type] ?? 0) + 1;
    assert.deepEqual(types, want.types);
    assert.deepEqual(p.rejected, want.rejected ?? {});
    assert.deepEqual(p.unsupported, want.unsupported ?? {});
    if (want.skipped) for (const [k, n] of Object.entries(want.skipped)) assert.equal(p.skipped[k], n, k);
    for (const r of p.records) {
      assert.ok(r.ioc.length > 0 && r.ioc === r.ioc.trim());
      if (r.ioc_type.startsWith('FileHash-') && r.ioc_type !== 'FileHash-SSDEEP')
        assert.equal(r.ioc, r.ioc.toLowerCase());
    }
  });
}

test('spot values: OTX pulse ids, MISP tags, STIX validity, threatfox confidence', () => {
  const otx = parseFeed(
    'otx',
    readFileSync(
      path.join(FIX, 'elastic-ti-otx/pulses_subscribed__test-otx-pulses-subscribed-ndjson.log'),
      'utf8',
    ),
  );
  assert.ok(otx.records.every((r) => r.ioc_id === '64d31e8a5133613a90976b3f'));
  const tf = parseFeed(
    'threatfox',
    readFileSync(path.join(FIX, 'elastic-ti-abusech/threatfox__test-commercial-fields.log'), 'utf8'),
  );
  assert.deepEqual(
    tf.records.map((r) => [r.ioc, r.confidence]),
    [
      ['wizzy.hopto.org', 100],
      ['evil.example.com', 75],
    ],
  );
  const stix = parseFeed(
    'stix',
    readFileSync(path.join(FIX, 'stix21-oasis/indicator-for-c2-ip-address.json'), 'utf8'),
  );
  assert.equal(stix.records[0].ioc, '10.0.0.0');
  assert.ok(stix.records[0].first_seen instanceof Date);
});

test('load: malwarebazaar sample into a lake — one iocs row per distinct hash', async () => {
  const t = await openTempLake('talon-intel-fx-');
  try {
    const r = await loadIocFile(
      t.lake,
      path.join(FIX, 'elastic-ti-abusech/malwarebazaar__test-malwarebazaar-ndjson.log'),
      'malwarebazaar',
    );
    const table = await t.lake.table('iocs');
    const rows = await t.lake.db.all<{ n: bigint }>(
      `SELECT count(*) AS n FROM ${await (await table!.snapshot()).scan()}`,
    );
    assert.equal(Number(rows[0].n), r.stored);
    assert.ok(r.stored >= 50 && r.stored <= 56, String(r.stored));
  } finally {
    await t.cleanup();
  }
});

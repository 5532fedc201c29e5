/**
 * A user's MaxMind databases (enrich.city_mmdb / enrich.asn_mmdb), checked against MaxMind's
 * public test databases (../shared/fixtures/maxmind-test). Expected values are read from the
 * JSON those databases were generated from (source-data/*.json), never copied here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Db } from '../sql/duckdb.js';
import { Enricher } from './enricher.js';
import { classifyValue, formatIp, parseIp, type ParsedIp } from './ip.js';
import type { GeoInfo } from './types.js';
import { fixturesRoot } from '../testing/fixtures.js';

const ROOT = path.join(fixturesRoot(), 'maxmind-test');
const db = (name: string) => path.join(ROOT, 'test-data', name);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type SourceRecord = Record<string, any>;

interface Network {
  /** CIDR text as a lookup should report it (IPv4 inside ::/96 given as IPv4). */
  cidr: string;
  first: ParsedIp;
  bits: number;
  record: SourceRecord;
}

/** Reads a source-data file: a list of one-key objects `{ "<cidr>": record }`. */
function sourceNetworks(file: string): Network[] {
  const list = JSON.parse(readFileSync(path.join(ROOT, 'source-data', file), 'utf8')) as Array<
    Record<string, SourceRecord>
  >;
  return list.map((entry) => {
    const [key, record] = Object.entries(entry)[0];
    const [cidrAddr, bitsText] = key.split('/');
    let addr = cidrAddr;
    let bits = Number(bitsText);
    if (addr.startsWith('::') && addr.includes('.')) {
      addr = addr.slice(2); // MaxMind keeps IPv4 at ::/96
      bits -= 96;
    }
    const first = parseIp(addr);
    assert.ok(first, key);
    return { cidr: `${formatIp(first)}/${bits}`, first, bits, record };
  });
}

function contains(outer: Network, inner: Network): boolean {
  if (outer.first.family !== inner.first.family || outer.bits >= inner.bits) return false;
  const words = (ip: ParsedIp) => (ip.family === 4 ? [ip.v4] : Array.from(ip.words));
  const a = words(outer.first);
  const b = words(inner.first);
  let bits = outer.bits;
  for (let k = 0; k < a.length && bits > 0; k++, bits -= 32) {
    const mask = bits >= 32 ? 0xffffffff : ~(0xffffffff >>> bits) >>> 0;
    if ((a[k] & mask) >>> 0 !== (b[k] & mask) >>> 0) return false;
  }
  return true;
}

/**
 * Networks whose first address the database answers with that network's own record: not
 * overridden by a more specific entry, and an address Talon looks up as itself (public,
 * not a 6to4/NAT64/mapped form that Talon resolves to its IPv4 address).
 */
function checkable(nets: Network[]): Network[] {
  return nets.filter((n) => {
    if (nets.some((m) => m !== n && contains(n, m))) return false;
    const c = classifyValue(formatIp(n.first));
    return c.ip_class === 'public' && c.address?.family === n.first.family;
  });
}

function expectedGeo(rec: SourceRecord): GeoInfo | null {
  const geo: GeoInfo = {
    country: rec.country?.names?.en ?? null,
    country_code: rec.country?.iso_code ?? null,
    city: rec.city?.names?.en ?? null,
    latitude: rec.location?.latitude ?? null,
    longitude: rec.location?.longitude ?? null,
  };
  return geo.country === null && geo.country_code === null && geo.city === null && geo.latitude === null
    ? null
    : geo;
}

for (const name of ['GeoIP2-City-Test', 'GeoLite2-City-Test']) {
  test(`${name}: every network's geo as its source data says`, async () => {
    const enricher = await Enricher.open({ cityMmdb: db(`${name}.mmdb`) });
    const nets = checkable(sourceNetworks(`${name}.json`));
    assert.ok(nets.length > 100, `only ${nets.length} checkable networks`);
    let v4 = 0;
    for (const n of nets) {
      if (n.first.family === 4) v4++;
      assert.deepEqual(enricher.lookupIp(formatIp(n.first)).geo, expectedGeo(n.record), n.cidr);
    }
    assert.ok(v4 >= 5, 'IPv4 networks checked');
    enricher.close();
  });
}

test('GeoLite2-ASN-Test: number, organisation and network of every network', async () => {
  const enricher = await Enricher.open({ asnMmdb: db('GeoLite2-ASN-Test.mmdb') });
  const nets = checkable(sourceNetworks('GeoLite2-ASN-Test.json'));
  assert.ok(nets.length > 100);
  let exact = 0;
  for (const n of nets) {
    const as = enricher.lookupIp(formatIp(n.first)).as;
    assert.equal(as?.as_number, n.record.autonomous_system_number ?? null, n.cidr);
    assert.equal(as?.as_org, n.record.autonomous_system_organization ?? null, n.cidr);
    // The writer merges adjacent networks with equal records, so the tree's network (what
    // as_network reports, like MaxMind's own readers) is the source network or a block around it.
    const [addr, bits] = (as?.as_network ?? '').split('/');
    const reported: Network = {
      cidr: as?.as_network ?? '',
      first: parseIp(addr)!,
      bits: Number(bits),
      record: {},
    };
    assert.equal(reported.cidr, `${formatIp(reported.first)}/${reported.bits}`, 'canonical CIDR text');
    assert.ok(reported.cidr === n.cidr || contains(reported, n), `${reported.cidr} should hold ${n.cidr}`);
    if (reported.cidr === n.cidr) exact++;
  }
  assert.ok(exact > 50, `${exact} networks reported exactly`);
  enricher.close();
});

test('spot checks: London, Milton, Linköping; Telstra, Bredband2', async () => {
  const enricher = await Enricher.open({
    cityMmdb: db('GeoIP2-City-Test.mmdb'),
    asnMmdb: db('GeoLite2-ASN-Test.mmdb'),
  });
  const london = enricher.lookupIp('81.2.69.142');
  assert.deepEqual(london.geo, {
    country: 'United Kingdom',
    country_code: 'GB',
    city: 'London',
    latitude: 51.5142,
    longitude: -0.0931,
  });
  assert.equal(enricher.lookupIp('216.160.83.57').geo?.city, 'Milton');
  assert.equal(enricher.lookupIp('89.160.20.129').geo?.city, 'Linköping');
  assert.deepEqual(enricher.lookupIp('1.128.0.1').as, {
    as_number: 1221,
    as_org: 'Telstra Pty Ltd',
    as_network: '1.128.0.0/11',
  });
  // Source rows 89.160.0.0/20 … 89.160.64.0/18 (all Bredband2) form one tree node.
  assert.deepEqual(enricher.lookupIp('89.160.20.129').as, {
    as_number: 29518,
    as_org: 'Bredband2 AB',
    as_network: '89.160.0.0/17',
  });
  // The FDR fixture's multi-address aip: the first public one is 67.43.156.13.
  const multi = enricher.lookupIp('67.43.156.13 67.43.156.14 81.2.69.192');
  assert.equal(multi.geo?.country_code, 'BT');
  // 67.43.152.0/22, 67.43.156.0/26 ×4, 67.43.157.0/24, 67.43.158.0/23: one AS, one /21 node.
  assert.deepEqual(multi.as, { as_number: 35908, as_org: null, as_network: '67.43.152.0/21' });
  // Not in the test databases at all: both structs null, class still public.
  assert.deepEqual(enricher.lookupIp('8.8.8.8'), { ip_class: 'public', geo: null, as: null });
  enricher.close();
});

test('ipTable with MaxMind databases matches lookupIp', async () => {
  const enricher = await Enricher.open({
    cityMmdb: db('GeoLite2-City-Test.mmdb'),
    asnMmdb: db('GeoLite2-ASN-Test.mmdb'),
  });
  const duck = await Db.open();
  try {
    const ips = ['81.2.69.142', '89.160.20.112', '2001:218::1', '10.0.0.1', '67.43.156.13 67.43.156.14'];
    await enricher.ipTable(duck, 'aip_lookup', ips);
    const rows = await duck.all<{ ip: string; geo: GeoInfo | null; asn: Record<string, unknown> | null }>(
      'SELECT ip, geo, asn FROM aip_lookup',
    );
    assert.equal(rows.length, ips.length);
    for (const row of rows) {
      const info = enricher.lookupIp(row.ip);
      assert.deepEqual(row.geo, info.geo, row.ip);
      const asn = row.asn && {
        ...row.asn,
        as_number: row.asn.as_number == null ? null : Number(row.asn.as_number),
      };
      assert.deepEqual(asn, info.as, row.ip);
    }
    const london = rows.find((r) => r.ip === '81.2.69.142');
    assert.equal(london?.geo?.city, 'London');
  } finally {
    duck.close();
    enricher.close();
  }
});

test('a database of the wrong kind is refused at open', async () => {
  await assert.rejects(Enricher.open({ cityMmdb: db('GeoLite2-ASN-Test.mmdb') }), /not a City database/);
  await assert.rejects(Enricher.open({ asnMmdb: db('GeoIP2-City-Test.mmdb') }), /not an ASN database/);
});

test('an IPv4-only database answers IPv6 lookups with nothing instead of failing', async () => {
  const enricher = await Enricher.open({ cityMmdb: db('MaxMind-DB-test-ipv4-24.mmdb') });
  const v6 = enricher.lookupIp('2001:4860:4860::8888');
  assert.equal(v6.ip_class, 'public');
  assert.equal(v6.geo, null);
  assert.equal(v6.as?.as_number, 15169); // the bundled ASN data still answers
  enricher.close();
});

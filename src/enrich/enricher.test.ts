import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Db } from '../sql/duckdb.js';
import { Enricher } from './enricher.js';
import { float32Text } from './geo-db.js';

// One Enricher for the file: the bundled databases take a moment to load.
const enricher = await Enricher.open();

test('bundled databases: stable facts about well-known resolvers', () => {
  const google = enricher.lookupIp('8.8.8.8');
  assert.equal(google.ip_class, 'public');
  assert.equal(google.as?.as_number, 15169);
  assert.match(google.as?.as_org ?? '', /google/i);
  assert.equal(google.geo?.country_code, 'US');
  assert.equal(google.geo?.country, 'United States');
  assert.equal(typeof google.geo?.latitude, 'number');
  // as_network is CIDR text containing the address
  assert.match(google.as?.as_network ?? '', /^8\.8\.\d+\.\d+\/\d+$/);

  const cloudflare = enricher.lookupIp('1.1.1.1');
  assert.equal(cloudflare.as?.as_number, 13335);

  const google6 = enricher.lookupIp('2001:4860:4860::8888');
  assert.equal(google6.ip_class, 'public');
  assert.equal(google6.as?.as_number, 15169);
  assert.match(google6.as?.as_network ?? '', /^2001:4860:[0-9a-f:]*\/\d+$/);
  assert.notEqual(google6.geo, null);

  const cloudflare6 = enricher.lookupIp('2606:4700:4700::1111');
  assert.equal(cloudflare6.as?.as_number, 13335);
});

test('Falcon spellings of the same address enrich the same', () => {
  const mapped = enricher.lookupIp('::ffff:8.8.8.8');
  assert.deepEqual(mapped, enricher.lookupIp('8.8.8.8'));
  assert.deepEqual(
    enricher.lookupIp('2001:4860:4860:0:0:0:0:8888'),
    enricher.lookupIp('2001:4860:4860::8888'),
  );
});

test('non-public addresses are classified and not looked up', () => {
  for (const [ip, cls] of [
    ['10.1.2.3', 'private'],
    ['192.168.0.10', 'private'],
    ['127.0.0.1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['169.254.1.1', 'link_local'],
    ['fe80::1', 'link_local'],
    ['100.64.1.1', 'cgnat'],
    ['224.0.0.1', 'multicast'],
    ['192.0.2.22', 'documentation'],
    ['2001:db8::16', 'documentation'],
    ['0.0.0.0', 'reserved'],
    ['fd00::1', 'private'],
    ['not an ip', 'invalid'],
    ['', 'invalid'],
  ]) {
    assert.deepEqual(enricher.lookupIp(ip), { ip_class: cls, geo: null, as: null }, ip);
  }
});

test('a null from a JS caller is invalid, not a crash', () => {
  assert.deepEqual(enricher.lookupIp(null as unknown as string), {
    ip_class: 'invalid',
    geo: null,
    as: null,
  });
  assert.deepEqual(enricher.lookupDomain(undefined as unknown as string), {
    registered_domain: null,
    public_suffix: null,
    subdomain: null,
  });
});

test('multi-IP aip: enriches the first valid public address', () => {
  const info = enricher.lookupIp('10.0.0.5 1.1.1.1 8.8.8.8');
  assert.equal(info.ip_class, 'public');
  assert.equal(info.as?.as_number, 13335);
  assert.equal(enricher.lookupIp('10.0.0.5 192.168.1.1').ip_class, 'private');
  assert.equal(enricher.lookupIp('10.0.0.5 192.168.1.1').as, null);
});

test('lookupDomain: PSL split with private suffixes', () => {
  assert.deepEqual(enricher.lookupDomain('Mail.Google.com.'), {
    registered_domain: 'google.com',
    public_suffix: 'com',
    subdomain: 'mail',
  });
  assert.equal(enricher.lookupDomain('x.blogspot.com').registered_domain, 'x.blogspot.com');
});

test('ICANN-only PSL when private domains are turned off', async () => {
  const icann = await Enricher.open({ pslPrivateDomains: false });
  assert.equal(icann.lookupDomain('x.blogspot.com').registered_domain, 'blogspot.com');
  icann.close();
});

test('float32 coordinates read back as the decimal the source wrote', () => {
  assert.equal(float32Text(Math.fround(37.422)), 37.422);
  assert.equal(float32Text(Math.fround(-0.0912244)), -0.0912244);
  assert.equal(float32Text(51.5142), 51.5142); // a double stays as it is
});

test('a bounded cache keeps answering correctly past its size', async () => {
  const small = await Enricher.open({ cacheEntries: 2 });
  const ips = ['8.8.8.8', '1.1.1.1', '10.0.0.1', '9.9.9.9', '8.8.8.8', '1.1.1.1'];
  const first = ips.map((ip) => small.lookupIp(ip).as?.as_number ?? null);
  assert.deepEqual(first, [15169, 13335, null, first[3], 15169, 13335]);
  small.close();
});

test('ipTable: one row per distinct value, same answers as lookupIp, typed structs', async () => {
  const db = await Db.open();
  try {
    const values = [
      '8.8.8.8',
      '1.1.1.1',
      '10.0.0.1',
      '8.8.8.8',
      'junk',
      '2001:4860:4860::8888',
      "it's",
      '10.0.0.5 1.1.1.1',
    ];
    await enricher.ipTable(db, 'aip_lookup', values);
    const cols = await db.columns('SELECT * FROM aip_lookup');
    assert.deepEqual(cols, [
      { name: 'ip', type: 'VARCHAR' },
      { name: 'ip_class', type: 'VARCHAR' },
      {
        name: 'geo',
        type: 'STRUCT(country VARCHAR, country_code VARCHAR, city VARCHAR, latitude DOUBLE, longitude DOUBLE)',
      },
      { name: 'asn', type: 'STRUCT(as_number BIGINT, as_org VARCHAR, as_network VARCHAR)' },
    ]);
    const rows = await db.all<{
      ip: string;
      ip_class: string;
      geo: unknown;
      asn: Record<string, unknown> | null;
    }>('SELECT * FROM aip_lookup ORDER BY ip');
    assert.equal(rows.length, new Set(values).size);
    for (const row of rows) {
      const expected = enricher.lookupIp(row.ip);
      assert.equal(row.ip_class, expected.ip_class, row.ip);
      assert.deepEqual(row.geo, expected.geo, row.ip);
      const asn =
        row.asn === null
          ? null
          : { ...row.asn, as_number: row.asn.as_number === null ? null : Number(row.asn.as_number) };
      assert.deepEqual(asn, expected.as, row.ip);
    }

    // The join the ingest pipeline runs: struct fields reachable as the seed uses them.
    await db.run(
      `CREATE TEMP TABLE events AS SELECT * FROM (VALUES ('8.8.8.8'), ('10.0.0.1'), (NULL)) t(aip)`,
    );
    const joined = await db.all<{
      aip: string | null;
      cls: string | null;
      org: string | null;
      cc: string | null;
    }>(
      `SELECT e.aip, l.ip_class AS cls, l.asn.as_org AS org, l.geo.country_code AS cc
       FROM events e LEFT JOIN aip_lookup l ON l.ip = e.aip ORDER BY e.aip NULLS LAST`,
    );
    assert.equal(joined[0].cls, 'private');
    assert.equal(joined[0].org, null);
    assert.equal(joined[1].cc, 'US');
    assert.match(joined[1].org ?? '', /google/i);
    assert.equal(joined[2].cls, null);

    // Replacing: a second call swaps the contents.
    await enricher.ipTable(db, 'aip_lookup', ['1.1.1.1']);
    assert.deepEqual(await db.all('SELECT ip FROM aip_lookup'), [{ ip: '1.1.1.1' }]);
    // An empty batch gives an empty table with the same columns.
    await enricher.ipTable(db, 'aip_lookup', []);
    assert.deepEqual(await db.all('SELECT count(*)::INT AS n FROM aip_lookup'), [{ n: 0 }]);
    // No staging tables left behind.
    const temps = await db.all<{ table_name: string }>(
      `SELECT table_name FROM duckdb_tables() WHERE temporary AND table_name LIKE '__talon_enrich%'`,
    );
    assert.deepEqual(temps, []);
  } finally {
    db.close();
  }
});

test('domainTable: one row per distinct domain with the PSL struct', async () => {
  const db = await Db.open();
  try {
    await enricher.domainTable(db, 'dns_lookup', [
      'www.example.co.uk',
      'com',
      '1.2.3.4',
      'www.example.co.uk',
      '',
      'a.b.github.io',
    ]);
    assert.deepEqual(await db.columns('SELECT * FROM dns_lookup'), [
      { name: 'domain', type: 'VARCHAR' },
      { name: 'psl', type: 'STRUCT(registered_domain VARCHAR, public_suffix VARCHAR, subdomain VARCHAR)' },
    ]);
    const rows = await db.all<{ domain: string; psl: unknown }>('SELECT * FROM dns_lookup ORDER BY domain');
    assert.deepEqual(rows, [
      { domain: '', psl: null },
      { domain: '1.2.3.4', psl: null },
      {
        domain: 'a.b.github.io',
        psl: { registered_domain: 'b.github.io', public_suffix: 'github.io', subdomain: 'a' },
      },
      { domain: 'com', psl: { registered_domain: null, public_suffix: 'com', subdomain: null } },
      {
        domain: 'www.example.co.uk',
        psl: { registered_domain: 'example.co.uk', public_suffix: 'co.uk', subdomain: 'www' },
      },
    ]);
  } finally {
    db.close();
  }
});

test('configured database paths fail at open with a clear message', async () => {
  await assert.rejects(Enricher.open({ cityMmdb: '/nonexistent/city.mmdb' }), /cannot read MaxMind database/);
  await assert.rejects(Enricher.open({ asnMmdb: '/nonexistent/asn.mmdb' }), /cannot read MaxMind database/);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'talon-enrich-'));
  try {
    const junk = path.join(dir, 'GeoLite2-City.mmdb');
    await fs.writeFile(junk, 'this is not a MaxMind database\n'.repeat(100));
    await assert.rejects(Enricher.open({ cityMmdb: junk }), /not a valid MaxMind DB/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('results are frozen: a caller cannot corrupt the cache', () => {
  const info = enricher.lookupIp('8.8.8.8');
  assert.ok(Object.isFrozen(info));
  assert.ok(Object.isFrozen(info.geo));
  assert.ok(Object.isFrozen(info.as));
  assert.ok(Object.isFrozen(enricher.lookupDomain('www.example.com')));
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AsnRanges } from './asn-ranges.js';
import { parseIpv4, parseIpv6 } from './ip.js';

const v4 = (s: string) => [parseIpv4(s)];
const csv = (text: string) => new TextEncoder().encode(text);

test('IPv4 ranges: quoted names with commas and doubled quotes, CRLF, gaps', () => {
  const table = AsnRanges.fromCsv(
    csv(
      [
        '16777216,16777471,13335,"Cloudflare, Inc."',
        '35309568,35313663,201907,"LLC ""SPUTNIK"""\r',
        '134744064,134744319,15169,Google LLC\r',
        '134743040,134744063,15169,Google LLC', // out of order: must be sorted on load
        '',
        'garbage line',
        '167772160,167772415,64500,', // no organisation
      ].join('\n'),
    ),
    1,
  );
  assert.equal(table.size, 5);
  assert.deepEqual(table.lookup(v4('1.0.0.1')), {
    as_number: 13335,
    as_org: 'Cloudflare, Inc.',
    as_network: '1.0.0.0/24',
  });
  assert.equal(table.lookup(v4('2.26.200.1'))?.as_org, 'LLC "SPUTNIK"');
  assert.deepEqual(table.lookup(v4('8.8.8.8')), {
    as_number: 15169,
    as_org: 'Google LLC',
    as_network: '8.8.8.0/24',
  });
  assert.equal(table.lookup(v4('8.8.4.4'))?.as_network, '8.8.4.0/22');
  assert.deepEqual(table.lookup(v4('10.0.0.9')), {
    as_number: 64500,
    as_org: null,
    as_network: '10.0.0.0/24',
  });
  assert.equal(table.lookup(v4('1.0.1.0')), null); // between ranges
  assert.equal(table.lookup(v4('0.0.0.1')), null); // before the first
  assert.equal(table.lookup(v4('255.0.0.1')), null); // after the last
});

test('overlapping rows: the nearest covering start wins, and an enclosing range still answers', () => {
  const table = AsnRanges.fromCsv(
    csv(
      [
        '100,1000,1,Outer', // encloses the next row
        '200,300,2,Inner',
        '900,2000,3,Overlapping',
      ].join('\n'),
    ),
    1,
  );
  assert.equal(table.lookup([150])?.as_number, 1);
  assert.equal(table.lookup([250])?.as_number, 2);
  assert.equal(table.lookup([500])?.as_number, 1);
  assert.equal(table.lookup([950])?.as_number, 3);
  assert.equal(table.lookup([1500])?.as_number, 3);
  assert.equal(table.lookup([2001]), null);
});

test('IPv6 ranges from 128-bit decimal numbers', () => {
  const table = AsnRanges.fromCsv(
    csv(
      [
        '42540488161975842760550356425300246528,42540488241204005274814694018844196863,6939,Hurricane Electric LLC',
        '42541956123769884636017138956568100865,42541956123769884636017138956568100865,64496,One Host',
        '42541956101370907050197289607612071936,42541956180599069564461627201156022271,15169,Google LLC',
      ].join('\n'),
    ),
    4,
  );
  const w = (s: string) => parseIpv6(s)!;
  assert.deepEqual(table.lookup(w('2001::1')), {
    as_number: 6939,
    as_org: 'Hurricane Electric LLC',
    as_network: '2001::/32',
  });
  assert.deepEqual(table.lookup(w('2001:4860:4860::8888')), {
    as_number: 15169,
    as_org: 'Google LLC',
    as_network: '2001:4860::/32',
  });
  // A /128 row nested in Google's /32 (rows out of order on purpose).
  assert.deepEqual(table.lookup(w('2001:4860:4860::1')), {
    as_number: 64496,
    as_org: 'One Host',
    as_network: '2001:4860:4860::1/128',
  });
  assert.equal(table.lookup(w('2001:4860::'))?.as_number, 15169);
  assert.equal(table.lookup(w('2001:1::1')), null);
  assert.equal(table.lookup(w('::1')), null);
  assert.equal(table.lookup(w('ffff::1')), null);
});

test('load() caches the parsed table: the cached copy answers like the CSV', async () => {
  const { mkdtemp, writeFile, readdir, rm } = await import('node:fs/promises');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-asn-cache-'));
  try {
    const csvFile = path.join(dir, 'asn.csv');
    await writeFile(
      csvFile,
      '16777216,16777471,13335,"Cloudflare, ""Inc"""\n16843008,16843263,15169,Google LLC\n',
    );
    const cacheDir = path.join(dir, 'cache');
    const fresh = AsnRanges.load(csvFile, 1, cacheDir);
    assert.equal((await readdir(cacheDir)).filter((f) => f.endsWith('.bin')).length, 1);
    const cached = AsnRanges.load(csvFile, 1, cacheDir);
    for (const ip of [16777216 + 5, 16843008 + 8, 99]) {
      assert.deepEqual(cached.lookup([ip]), fresh.lookup([ip]));
    }
    assert.equal(cached.lookup([16777221])?.as_org, 'Cloudflare, "Inc"');
    // a damaged cache file is ignored and rewritten
    const [bin] = (await readdir(cacheDir)).filter((f) => f.endsWith('.bin'));
    await writeFile(path.join(cacheDir, bin), 'garbage');
    assert.equal(AsnRanges.load(csvFile, 1, cacheDir).lookup([16843009])?.as_number, 15169);
    assert.equal(AsnRanges.load(csvFile, 1, cacheDir).lookup([16843009])?.as_number, 15169);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

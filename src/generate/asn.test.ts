import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { intToIpv4, ipInList, ipv4ToInt, loadAsnRanges, pickAddress, splitCsvRow } from './asn.js';
import { Rng } from './prng.js';

test('splitCsvRow reads quoted organisations with commas and doubled quotes', () => {
  assert.deepEqual(splitCsvRow('1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."'), [
    '1.0.0.0',
    '1.0.0.255',
    '13335',
    'Cloudflare, Inc.',
  ]);
  assert.deepEqual(splitCsvRow('2.3.0.0,2.15.255.255,3215,Orange S.A.'), [
    '2.3.0.0',
    '2.15.255.255',
    '3215',
    'Orange S.A.',
  ]);
  assert.deepEqual(splitCsvRow('a,"say ""hi""",c'), ['a', 'say "hi"', 'c']);
  assert.deepEqual(splitCsvRow('a,,'), ['a', '', '']);
});

test('ipInList matches exact addresses and CIDRs, nothing else', () => {
  const list = ['198.51.100.7', '203.0.113.16/28'];
  assert.ok(ipInList('198.51.100.7', list));
  assert.ok(!ipInList('198.51.100.70', list));
  assert.ok(ipInList('203.0.113.16', list));
  assert.ok(ipInList('203.0.113.31', list));
  assert.ok(!ipInList('203.0.113.32', list));
  assert.ok(!ipInList('203.0.113.15', list));
  assert.equal(intToIpv4(ipv4ToInt('255.1.2.3')), '255.1.2.3');
  assert.equal(ipv4ToInt('1.2.3'), -1);
});

test("addresses are picked inside the database rows of the wanted AS, with that row's organisation", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'talon-asn-'));
  try {
    const csv = path.join(dir, 'asn.csv');
    await writeFile(
      csv,
      [
        '1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."',
        '5.35.192.0,5.35.199.255,2856,British Telecommunications PLC',
        '9.9.9.0,9.9.9.255,19281,Quad9',
      ].join('\n') + '\n',
    );
    const ranges = await loadAsnRanges(csv, new Set([2856, 13335]));
    assert.deepEqual(
      [...ranges.keys()].sort((x, y) => x - y),
      [2856, 13335],
    );
    const rng = new Rng('asn-test');
    for (let i = 0; i < 50; i++) {
      const a = pickAddress(rng, ranges.get(2856)!, new Set());
      assert.equal(a.asOrg, 'British Telecommunications PLC');
      const v = ipv4ToInt(a.ip);
      assert.ok(v > ipv4ToInt('5.35.192.0') && v < ipv4ToInt('5.35.199.255'));
      assert.ok(v % 256 !== 0 && v % 256 !== 255);
    }
    assert.equal(ranges.get(13335)![0].asOrg, 'Cloudflare, Inc.');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the PRNG is deterministic per seed and label', () => {
  const a = new Rng('s');
  const b = new Rng('s');
  const xs = Array.from({ length: 20 }, () => a.u32());
  assert.deepEqual(
    Array.from({ length: 20 }, () => b.u32()),
    xs,
  );
  assert.notDeepEqual(
    Array.from({ length: 20 }, () => new Rng('t').u32()),
    xs,
  );
  assert.equal(new Rng('s').fork('x').hex(16), new Rng('s').fork('x').hex(16));
  assert.notEqual(new Rng('s').fork('x').hex(16), new Rng('s').fork('y').hex(16));
  assert.match(new Rng('u').uuid(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const r = new Rng('range');
  for (let i = 0; i < 1000; i++) {
    const n = r.int(3, 7);
    assert.ok(n >= 3 && n <= 7 && Number.isInteger(n));
  }
  assert.match(r.digits(18), /^[1-9]\d{17}$/);
});

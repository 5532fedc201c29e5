import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cidr,
  classifyValue,
  formatIp,
  formatIpv6,
  parseIp,
  parseIpv4,
  parseIpv6,
  v4NetworkWithin,
  v6NetworkWithin,
  type IpClass,
} from './ip.js';

test('parses IPv4 strictly', () => {
  assert.equal(parseIpv4('8.8.8.8'), 0x08080808);
  assert.equal(parseIpv4('255.255.255.255'), 0xffffffff);
  assert.equal(parseIpv4('0.0.0.0'), 0);
  for (const bad of [
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '1.2.3.-4',
    '01.2.3.4',
    '1..2.3',
    '1.2.3.4 ',
    'a.b.c.d',
    '1.2.3.4.',
  ])
    assert.equal(parseIpv4(bad), -1, bad);
});

test('parses IPv6 in compressed, long, embedded-IPv4 and zoned forms', () => {
  const words = (s: string) => Array.from(parseIpv6(s) ?? [-1]);
  assert.deepEqual(words('::'), [0, 0, 0, 0]);
  assert.deepEqual(words('::1'), [0, 0, 0, 1]);
  assert.deepEqual(words('0:0:0:0:0:0:0:1'), [0, 0, 0, 1]); // Falcon's long form
  assert.deepEqual(words('2001:DB8::FFFF:1'), [0x20010db8, 0, 0, 0xffff0001]);
  assert.deepEqual(words('1::'), [0x00010000, 0, 0, 0]);
  assert.deepEqual(words('::ffff:1.2.3.4'), [0, 0, 0xffff, 0x01020304]);
  assert.deepEqual(words('fe80::1%eth0'), [0xfe800000, 0, 0, 1]);
  assert.deepEqual(words('1:2:3:4:5:6:7::'), [0x00010002, 0x00030004, 0x00050006, 0x00070000]);
  for (const bad of [
    ':',
    ':1',
    '1:',
    '1:::2',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '12345::',
    'g::1',
    '1:2:3:4:5:6:7:8::',
    '::1.2.3',
    'fe80::1%',
  ])
    assert.equal(parseIpv6(bad), null, bad);
});

test('formats IPv6 per RFC 5952', () => {
  assert.equal(formatIpv6(parseIpv6('2001:0db8:0000:0000:0000:0000:0000:0001')!), '2001:db8::1');
  assert.equal(formatIpv6(parseIpv6('2001:db8:0:1:1:1:1:1')!), '2001:db8:0:1:1:1:1:1'); // a single zero group stays
  assert.equal(formatIpv6(parseIpv6('2001:0:0:1:0:0:0:1')!), '2001:0:0:1::1'); // longest run wins
  assert.equal(formatIpv6(parseIpv6('2001:db8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1'); // first of equal runs
  assert.equal(formatIpv6(parseIpv6('0:0:0:0:0:0:0:0')!), '::');
  assert.equal(formatIp(parseIp('10.1.2.3')!), '10.1.2.3');
});

const CLASSIFICATION: Array<[string, IpClass]> = [
  ['8.8.8.8', 'public'],
  ['1.1.1.1', 'public'],
  ['10.0.0.1', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['172.32.0.1', 'public'],
  ['192.168.1.1', 'private'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['169.254.10.20', 'link_local'],
  ['100.64.0.1', 'cgnat'],
  ['100.127.255.255', 'cgnat'],
  ['100.128.0.1', 'public'],
  ['224.0.0.251', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['192.0.2.22', 'documentation'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.9', 'documentation'],
  ['0.0.0.0', 'reserved'],
  ['0.1.2.3', 'reserved'],
  ['255.255.255.255', 'reserved'],
  ['240.0.0.1', 'reserved'],
  ['192.0.0.8', 'reserved'],
  ['198.18.0.1', 'reserved'],
  ['2001:4860:4860::8888', 'public'],
  ['2a02:cf40::1', 'public'],
  ['::', 'reserved'],
  ['0:0:0:0:0:0:0:0', 'reserved'],
  ['::1', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['fe80::1', 'link_local'],
  ['febf::1', 'link_local'],
  ['fec0::1', 'reserved'],
  ['fc00::1', 'private'],
  ['fd12:3456::1', 'private'],
  ['ff02::1', 'multicast'],
  ['2001:db8::16', 'documentation'],
  ['3fff:0fff::1', 'documentation'],
  ['3ffe::1', 'public'],
  ['100::1', 'reserved'],
  ['2001:2::1', 'reserved'],
  ['::ffff:10.0.0.1', 'private'], // IPv4-mapped: the IPv4 address decides
  ['::ffff:8.8.8.8', 'public'],
  ['64:ff9b::808:808', 'public'], // NAT64 of 8.8.8.8
  ['64:ff9b::a00:1', 'private'], // NAT64 of 10.0.0.1
  ['2002:c0a8:101::1', 'private'], // 6to4 of 192.168.1.1
  ['::1.2.3.4', 'reserved'], // IPv4-compatible (deprecated)
  ['4000::1', 'reserved'], // outside 2000::/3
  ['5f00::1', 'reserved'],
  ['', 'invalid'],
  ['not-an-ip', 'invalid'],
  ['300.1.1.1', 'invalid'],
  ['2001:db8::g', 'invalid'],
  ['  8.8.8.8  ', 'public'],
];

test('classifies addresses from the special-purpose registries', () => {
  for (const [ip, cls] of CLASSIFICATION) assert.equal(classifyValue(ip).ip_class, cls, ip);
});

test('public addresses carry the address to look up; IPv4-carrying IPv6 yields the IPv4', () => {
  assert.deepEqual(classifyValue('8.8.8.8').address, { family: 4, v4: 0x08080808 });
  assert.deepEqual(classifyValue('::ffff:8.8.4.4').address, { family: 4, v4: 0x08080404 });
  assert.deepEqual(classifyValue('2002:0808:0808::1').address, { family: 4, v4: 0x08080808 });
  assert.equal(classifyValue('10.0.0.1').address, null);
  const v6 = classifyValue('2001:4860:4860::8888').address;
  assert.equal(v6?.family, 6);
});

test('multi-IP aip: first valid public address wins, else first valid, else invalid', () => {
  const fixtureLike = classifyValue('67.43.156.13 67.43.156.14 81.2.69.192');
  assert.equal(fixtureLike.ip_class, 'public');
  assert.deepEqual(fixtureLike.address, { family: 4, v4: parseIpv4('67.43.156.13') });

  const privateFirst = classifyValue('10.1.2.3 junk 81.2.69.142');
  assert.deepEqual(privateFirst.address, { family: 4, v4: parseIpv4('81.2.69.142') });

  assert.equal(classifyValue('junk 10.1.2.3 192.168.0.1').ip_class, 'private');
  assert.equal(classifyValue('fe80::1  10.0.0.1').ip_class, 'link_local');
  assert.equal(classifyValue('junk also-junk').ip_class, 'invalid');
  assert.equal(classifyValue('10.0.0.1,8.8.8.8').ip_class, 'public');
  assert.equal(classifyValue('\t2001:4860:4860::8888\n8.8.8.8').address?.family, 6);
});

test('network of a range row is the largest aligned block inside it', () => {
  const ip = (s: string) => parseIpv4(s);
  assert.equal(v4NetworkWithin(ip('8.8.8.8'), ip('8.8.8.0'), ip('8.8.8.255')), '8.8.8.0/24');
  // 1.0.4.0 – 1.0.7.255 is exactly a /22
  assert.equal(v4NetworkWithin(ip('1.0.5.1'), ip('1.0.4.0'), ip('1.0.7.255')), '1.0.4.0/22');
  // 1.0.128.0 – 1.0.196.255 is not a CIDR block: the address's block inside it
  assert.equal(v4NetworkWithin(ip('1.0.130.1'), ip('1.0.128.0'), ip('1.0.196.255')), '1.0.128.0/18');
  assert.equal(v4NetworkWithin(ip('1.0.196.1'), ip('1.0.128.0'), ip('1.0.196.255')), '1.0.196.0/24');
  assert.equal(v4NetworkWithin(ip('0.0.0.1'), 0, 0xffffffff), '0.0.0.0/0');
  assert.equal(v4NetworkWithin(ip('9.9.9.9'), ip('9.9.9.9'), ip('9.9.9.9')), '9.9.9.9/32');
  const w = (s: string) => parseIpv6(s)!;
  assert.equal(
    v6NetworkWithin(
      w('2001:4860:4860::8888'),
      w('2001:4860::'),
      w('2001:4860:ffff:ffff:ffff:ffff:ffff:ffff'),
    ),
    '2001:4860::/32',
  );
  assert.equal(cidr(parseIp('81.2.69.142')!, 31), '81.2.69.142/31');
  assert.equal(cidr(parseIp('81.2.69.143')!, 31), '81.2.69.142/31');
  assert.equal(cidr(parseIp('2001:db8::1')!, 32), '2001:db8::/32');
});

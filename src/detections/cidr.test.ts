import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressSet, parseCidr, parseIp } from './cidr.js';

test('IPv4 CIDR bounds are exact', () => {
  const s = new AddressSet(['10.0.0.0/8', '192.168.1.10', '172.16.0.0/12']);
  assert.equal(s.has('10.0.0.0'), true);
  assert.equal(s.has('10.255.255.255'), true);
  assert.equal(s.has('11.0.0.0'), false);
  assert.equal(s.has('9.255.255.255'), false);
  assert.equal(s.has('192.168.1.10'), true);
  assert.equal(s.has('192.168.1.11'), false);
  assert.equal(s.has('172.31.255.255'), true);
  assert.equal(s.has('172.32.0.0'), false);
  // a string prefix match would wrongly accept this
  assert.equal(new AddressSet(['1.2.3.4']).has('1.2.3.45'), false);
});

test('host bits in a CIDR are cleared', () => {
  assert.deepEqual(parseCidr('10.1.2.3/8'), { version: 4, network: 10n << 24n, prefix: 8 });
  assert.equal(new AddressSet(['10.1.2.3/8']).has('10.200.0.1'), true);
});

test('IPv6 CIDR and compressed forms', () => {
  const s = new AddressSet(['2001:db8::/32', 'fe80::1']);
  assert.equal(s.has('2001:db8:ffff::1'), true);
  assert.equal(s.has('2001:0DB8:0000:0000:0000:0000:0000:0001'), true);
  assert.equal(s.has('2001:db9::1'), false);
  assert.equal(s.has('fe80::1'), true);
  assert.equal(s.has('fe80::1%eth0'), true);
  assert.equal(s.has('fe80::2'), false);
  assert.equal(new AddressSet(['::/0']).has('2001:db8::1'), true);
  assert.equal(new AddressSet(['::/0']).has('10.0.0.1'), false, 'a v6 block never holds a v4 address');
});

test('IPv4-mapped IPv6 is the IPv4 address', () => {
  const s = new AddressSet(['10.0.0.0/8']);
  assert.equal(s.has('::ffff:10.1.2.3'), true);
  assert.equal(s.has('::ffff:0a01:0203'), true);
  assert.equal(new AddressSet(['::ffff:10.0.0.0/104']).has('10.9.9.9'), true);
});

test('invalid addresses and entries', () => {
  assert.equal(parseIp('256.1.1.1'), undefined);
  assert.equal(parseIp('1.2.3'), undefined);
  assert.equal(parseIp('1::2::3'), undefined);
  assert.equal(parseIp('1:2:3:4:5:6:7:8:9'), undefined);
  assert.equal(new AddressSet(['10.0.0.0/8']).has(''), false);
  assert.equal(new AddressSet(['10.0.0.0/8']).has(null), false);
  assert.throws(() => new AddressSet(['10.0.0.0/33']), /not an IP address or CIDR/);
  assert.throws(() => new AddressSet(['server1']), /server1/);
  assert.equal(new AddressSet(['', ' ']).blocks.length, 0, "the seed's ['', ''] is an empty list");
});

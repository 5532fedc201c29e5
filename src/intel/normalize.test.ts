import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeIoc, refang, canonicalType, ipv4InCidr, ipv6InCidr } from './normalize.js';

const ok = (type: string, v: string) => {
  const n = normalizeIoc(type, v);
  assert.ok(n.ok, `${type} ${v}: ${n.ok ? '' : n.reason}`);
  return [n.ioc_type, n.ioc];
};
const bad = (type: string, v: string) => {
  const n = normalizeIoc(type, v);
  assert.ok(!n.ok, `${type} ${v} should be rejected`);
  return n.reason;
};

test('refang undoes common defanging', () => {
  assert.equal(refang('hxxp://evil[.]example(.)com/a'), 'http://evil.example.com/a');
  assert.equal(refang('hXXps[:]//x[dot]org'), 'https://x.org');
  assert.equal(refang('1.2.3[.]4'), '1.2.3.4');
  assert.equal(refang('bad[@]evil(dot)com'), 'bad@evil.com');
  assert.equal(refang('evil (dot) com'), 'evil.com');
  assert.equal(refang('fxp://host[.]com'), 'ftp://host.com');
});

test('types: seed names and feed aliases', () => {
  assert.equal(canonicalType('ip-dst'), 'IP');
  assert.equal(canonicalType('sha256'), 'FileHash-SHA256');
  assert.equal(canonicalType('domain-name'), 'domain');
  assert.equal(canonicalType('Mutex'), undefined);
  assert.deepEqual(ok('ip', '2001:DB8:0:0::1'), ['IPv6', '2001:db8::1']);
  assert.deepEqual(ok('ip-src', '8.8.8.8'), ['IPv4', '8.8.8.8']);
  assert.match(bad('Mutex', 'x'), /unsupported type Mutex/);
});

test('IPs and CIDRs: validated, canonical, host bits cleared, /32 is an address', () => {
  assert.deepEqual(ok('IPv4', ' 10.0.0[.]1 '), ['IPv4', '10.0.0.1']);
  assert.match(bad('IPv4', '256.1.1.1'), /IPv4: malformed/);
  assert.match(bad('IPv4', '01.2.3.4'), /IPv4: malformed/);
  assert.match(bad('IPv4', 'example.com'), /IPv4: malformed/);
  assert.match(bad('IPv6', '2001:db8:::1'), /IPv6: malformed/);
  assert.deepEqual(ok('CIDR', '10.1.2.3/8'), ['IPv4-CIDR', '10.0.0.0/8']);
  assert.deepEqual(ok('IPv4', '192.0.2.7/32'), ['IPv4', '192.0.2.7']);
  assert.deepEqual(ok('CIDR', '2001:DB8:ffff::1/32'), ['IPv6-CIDR', '2001:db8::/32']);
  assert.match(bad('CIDR', '10.0.0.0/33'), /prefix above 32/);
  assert.ok(ipv4InCidr('10.200.3.4', '10.0.0.0/8'));
  assert.ok(!ipv4InCidr('11.0.0.1', '10.0.0.0/8'));
  assert.ok(ipv6InCidr('2001:db8:1::5', '2001:db8::/32'));
  assert.ok(!ipv6InCidr('2001:db9::5', '2001:db8::/32'));
});

test('hosts and domains: lower-case, trailing dot, punycode, must look like a name', () => {
  assert.deepEqual(ok('hostname', 'WWW.Evil.Example.COM.'), ['hostname', 'www.evil.example.com']);
  assert.deepEqual(ok('domain', 'bücher.example'), ['domain', 'xn--bcher-kva.example']);
  assert.deepEqual(ok('domain', 'evil[.]example'), ['domain', 'evil.example']);
  assert.match(bad('domain', 'localhost'), /domain: malformed/);
  assert.match(bad('domain', '1.2.3.4'), /domain: malformed/);
  assert.match(bad('hostname', 'bad host.com'), /hostname: malformed/);
  assert.match(bad('domain', '-lead.example.com'), /domain: malformed/);
});

test('URLs: WHATWG normalization (scheme/host case, default port, fragment)', () => {
  assert.deepEqual(ok('URL', 'HTTP://Evil.Example.COM:80/Path?q=1#frag'), [
    'URL',
    'http://evil.example.com/Path?q=1',
  ]);
  assert.deepEqual(ok('URL', 'hxxps://evil[.]example:443'), ['URL', 'https://evil.example/']);
  assert.deepEqual(ok('URL', 'http://1.2.3.4:8080/a b'), ['URL', 'http://1.2.3.4:8080/a%20b']);
  assert.match(bad('URL', '/woolen/'), /URL: not parseable/);
  assert.match(bad('URL', 'mailto:x@y.com'), /URL: no host/);
});

test('hashes: length and hex checked per type, lower-cased; ssdeep keeps case', () => {
  const md5 = 'D41D8CD98F00B204E9800998ECF8427E';
  assert.deepEqual(ok('FileHash-MD5', md5), ['FileHash-MD5', md5.toLowerCase()]);
  assert.match(bad('FileHash-MD5', md5.slice(1)), /FileHash-MD5: not 32 hex digits/);
  assert.match(bad('md5', '127.0.0.1'), /FileHash-MD5: not 32 hex digits/);
  assert.match(bad('FileHash-SHA1', 'z'.repeat(40)), /FileHash-SHA1: not 40 hex/);
  assert.deepEqual(ok('sha256', 'A'.repeat(64)), ['FileHash-SHA256', 'a'.repeat(64)]);
  assert.match(bad('FileHash-SHA256', 'a'.repeat(63)), /not 64 hex/);
  assert.deepEqual(ok('tlsh', 'T1' + 'AB'.repeat(35)), ['FileHash-TLSH', 't1' + 'ab'.repeat(35)]);
  assert.deepEqual(ok('tlsh', 'F9'.repeat(35)), ['FileHash-TLSH', 'f9'.repeat(35)]);
  assert.match(bad('tlsh', 'F9'.repeat(30)), /TLSH/);
  const ss = '3072:DsPPK3p+8r5igrL1Tq50cV:D+PL8bronBDmDJ';
  assert.deepEqual(ok('ssdeep', ss), ['FileHash-SSDEEP', ss]);
  assert.match(bad('ssdeep', 'nonsense'), /SSDEEP/);
  assert.deepEqual(ok('imphash', 'F34D5F2D4577ED6D9CEEC516C1F5A744'), [
    'FileHash-IMPHASH',
    'f34d5f2d4577ed6d9ceec516c1f5a744',
  ]);
});

test('email and CVE', () => {
  assert.deepEqual(ok('email', 'Bad.Guy[@]Evil[.]Example'), ['email', 'bad.guy@evil.example']);
  assert.match(bad('email', 'nobody'), /email/);
  assert.deepEqual(ok('CVE', 'cve-2021-44228'), ['CVE', 'CVE-2021-44228']);
  assert.match(bad('CVE', 'CVE-21-1'), /CVE/);
  assert.match(bad('IPv4', ''), /empty value/);
});

test('URLs already in WHATWG form skip the parser and come out the same as through it', () => {
  const urls = [
    'http://evil.example/p/1',
    'https://a-b.example/x?y=1&z=2',
    'http://u1.example/a/./b',
    'http://u1.example/a/../b',
    'http://u1.example/a/.',
    'http://1.2.3.4/x',
    'http://0x7f.1/x',
    'http://a.b.123/x',
    'http://xn--nxasmq6b.example/',
    'http://xn--zz.example/',
    "http://a.example/it's?q='x'",
    'http://a.example/%7Efoo',
    'http://a.example/x?',
    'http://a.example',
    'http://a.example/x#frag',
    'http://a.example:80/x',
    'http://A.example/x',
    'http://a.example/x y',
    'http://a.example/x\\y',
    'http://_dmarc.a.example/x',
    'http://a.example/@user:pw/x',
  ];
  for (const u of urls) {
    const n = normalizeIoc('URL', u);
    let want: string | undefined;
    try {
      const w = new URL(u);
      w.hash = '';
      want = w.hostname ? w.href : undefined;
    } catch {
      want = undefined;
    }
    assert.equal(n.ok ? n.ioc : undefined, want, u);
  }
});

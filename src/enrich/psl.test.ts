import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitDomain } from './psl.js';

const NONE = { registered_domain: null, public_suffix: null, subdomain: null };

test('splits names at the ICANN public suffix', () => {
  assert.deepEqual(splitDomain('www.example.co.uk'), {
    registered_domain: 'example.co.uk',
    public_suffix: 'co.uk',
    subdomain: 'www',
  });
  assert.deepEqual(splitDomain('a.b.example.com'), {
    registered_domain: 'example.com',
    public_suffix: 'com',
    subdomain: 'a.b',
  });
  assert.deepEqual(splitDomain('example.com'), {
    registered_domain: 'example.com',
    public_suffix: 'com',
    subdomain: null,
  });
});

test('a bare suffix has no registered domain', () => {
  assert.deepEqual(splitDomain('com'), { registered_domain: null, public_suffix: 'com', subdomain: null });
  assert.deepEqual(splitDomain('co.uk'), {
    registered_domain: null,
    public_suffix: 'co.uk',
    subdomain: null,
  });
});

test('case, surrounding space and the root dot do not matter', () => {
  const expected = { registered_domain: 'example.com', public_suffix: 'com', subdomain: 'www' };
  assert.deepEqual(splitDomain('WWW.Example.COM'), expected);
  assert.deepEqual(splitDomain('www.example.com.'), expected);
  assert.deepEqual(splitDomain(' www.example.com '), expected);
});

test('IP literals, empty and malformed names give nothing', () => {
  assert.deepEqual(splitDomain(''), NONE);
  assert.deepEqual(splitDomain('.'), NONE);
  assert.deepEqual(splitDomain('1.2.3.4'), NONE);
  assert.deepEqual(splitDomain('2001:db8::1'), NONE);
  assert.deepEqual(splitDomain('a..b.com'), NONE);
});

test('private PSL section counts by default; ICANN-only on request', () => {
  assert.deepEqual(splitDomain('evil.duckdns.org'), {
    registered_domain: 'evil.duckdns.org',
    public_suffix: 'duckdns.org',
    subdomain: null,
  });
  assert.deepEqual(splitDomain('a.b.github.io'), {
    registered_domain: 'b.github.io',
    public_suffix: 'github.io',
    subdomain: 'a',
  });
  assert.deepEqual(splitDomain('evil.duckdns.org', false), {
    registered_domain: 'duckdns.org',
    public_suffix: 'org',
    subdomain: 'evil',
  });
});

test('Windows-style names: SRV labels with underscores, unknown TLDs, single labels', () => {
  assert.deepEqual(splitDomain('_ldap._tcp.dc._msdcs.corp.local'), {
    registered_domain: 'corp.local',
    public_suffix: 'local',
    subdomain: '_ldap._tcp.dc._msdcs',
  });
  assert.deepEqual(splitDomain('WPAD'), { registered_domain: null, public_suffix: 'wpad', subdomain: null });
  assert.deepEqual(splitDomain('xn--80ak6aa92e.com'), {
    registered_domain: 'xn--80ak6aa92e.com',
    public_suffix: 'com',
    subdomain: null,
  });
});

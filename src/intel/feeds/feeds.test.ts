import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFeed } from './index.js';
import { parseStixPattern } from './stix.js';
import type { FeedParse } from './record.js';

const H64 = (c: string) => c.repeat(64);
const byType = (p: FeedParse) =>
  p.records.reduce<Record<string, number>>((a, r) => ((a[r.ioc_type] = (a[r.ioc_type] ?? 0) + 1), a), {});

test('otx: pulse export with indicators; pulse id, created, expiration; bad values counted', () => {
  const pulse = {
    id: 'p1',
    name: 'Campaign X',
    created: '2026-01-01T00:00:00.000',
    tags: ['apt'],
    indicators: [
      {
        id: 1,
        indicator: '203.0.113[.]5',
        type: 'IPv4',
        created: '2026-01-02T00:00:00',
        expiration: '2026-02-01T00:00:00',
      },
      { id: 2, indicator: 'EVIL.example', type: 'domain', created: '2026-01-02T00:00:00' },
      { id: 3, indicator: H64('A'), type: 'FileHash-SHA256' },
      { id: 4, indicator: 'abc', type: 'FileHash-MD5' },
      { id: 5, indicator: 'Global\\mutex', type: 'Mutex' },
      { id: 6, indicator: 'CVE-2024-0001', type: 'CVE' },
    ],
  };
  const p = parseFeed('otx', JSON.stringify({ results: [pulse] }));
  assert.deepEqual(byType(p), { IPv4: 1, domain: 1, 'FileHash-SHA256': 1, CVE: 1 });
  assert.deepEqual(p.rejected, { 'FileHash-MD5: not 32 hex digits': 1 });
  assert.deepEqual(p.unsupported, { 'unsupported type Mutex': 1 });
  const ip = p.records[0];
  assert.equal(ip.ioc, '203.0.113.5');
  assert.equal(ip.ioc_id, 'p1');
  assert.equal(ip.valid_until?.toISOString(), '2026-02-01T00:00:00.000Z');
  assert.equal(ip.first_seen?.toISOString(), '2026-01-02T00:00:00.000Z');
  assert.deepEqual(ip.tags, ['apt']);
  assert.equal(p.records[1].ioc, 'evil.example');
});

test('urlhaus: CSV dump with # header block, and the JSON dump', () => {
  const csv = [
    '################################################################',
    '# abuse.ch URLhaus Database Dump (CSV - recent URLs)           #',
    '# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter',
    '"100","2026-01-05 10:00:00","http://198.51.100.7:8080/x.sh","online","2026-01-05 10:00:00","malware_download","elf,Mozi","https://urlhaus.abuse.ch/url/100/","r1"',
    '"101","2026-01-04 10:00:00","hxxp://Bad.Example/p","offline","2026-01-04 12:00:00","malware_download","","https://urlhaus.abuse.ch/url/101/","r2"',
    '"102","2026-01-04 10:00:00","not a url","offline","","malware_download","","",""',
  ].join('\n');
  const p = parseFeed('urlhaus', csv);
  assert.deepEqual(
    p.records.map((r) => [r.ioc_type, r.ioc, r.ioc_id, r.last_seen?.toISOString() ?? null]),
    [
      ['URL', 'http://198.51.100.7:8080/x.sh', '100', null],
      ['URL', 'http://bad.example/p', '101', '2026-01-04T12:00:00.000Z'],
    ],
  );
  assert.deepEqual(p.records[0].tags, ['elf', 'Mozi']);
  assert.deepEqual(p.rejected, { 'URL: not parseable': 1 });
  const json = {
    '200': [
      { dateadded: '2026-01-01 00:00:00 UTC', url: 'http://a.example/1', url_status: 'online', tags: ['x'] },
    ],
  };
  const j = parseFeed('urlhaus', JSON.stringify(json));
  assert.deepEqual(
    j.records.map((r) => [r.ioc, r.ioc_id]),
    [['http://a.example/1', '200']],
  );
});

test('malwarebazaar: every hash of a sample is an IoC (CSV dump with n/a, and JSON API)', () => {
  const csv = [
    '# MalwareBazaar full data dump',
    '# "first_seen_utc","sha256_hash","md5_hash","sha1_hash","reporter","file_name","file_type_guess","mime_type","signature","clamav","vtpercent","imphash","ssdeep","tlsh"',
    `"2026-01-03 01:02:03", "${H64('b')}", "${'c'.repeat(32)}", "${'d'.repeat(40)}", "rep", "a.exe", "exe", "application/x-dosexec", "AgentTesla", "n/a", "n/a", "${'e'.repeat(32)}", "48:abc+/:def", "T1${'F'.repeat(70)}"`,
    `"2026-01-03 01:02:04", "${H64('1')}", "${'2'.repeat(32)}", "${'3'.repeat(40)}", "rep", "b.zip", "zip", "application/zip", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"`,
  ].join('\n');
  const p = parseFeed('malwarebazaar', csv);
  assert.deepEqual(byType(p), {
    'FileHash-SHA256': 2,
    'FileHash-MD5': 2,
    'FileHash-SHA1': 2,
    'FileHash-IMPHASH': 1,
    'FileHash-SSDEEP': 1,
    'FileHash-TLSH': 1,
  });
  assert.ok(p.records.every((r) => r.ioc_id === H64('b') || r.ioc_id === H64('1')));
  assert.equal(p.records.find((r) => r.ioc_type === 'FileHash-TLSH')?.ioc, 't1' + 'f'.repeat(70));
  const api = {
    query_status: 'ok',
    data: [{ sha256_hash: H64('9'), md5_hash: 'short', first_seen: '2026-01-01 00:00:00' }],
  };
  const j = parseFeed('malwarebazaar', JSON.stringify(api));
  assert.equal(j.records.length, 1);
  assert.deepEqual(j.rejected, { 'FileHash-MD5: not 32 hex digits': 1 });
});

test('threatfox: export shape, ip:port → IPv4 with port tag, confidence, hashes', () => {
  const exp = {
    '1': [
      {
        ioc_value: '192.0.2.9:4444',
        ioc_type: 'ip:port',
        threat_type: 'botnet_cc',
        malware_printable: 'Cobalt Strike',
        confidence_level: 80,
        first_seen_utc: '2026-01-01 00:00:00',
        last_seen_utc: null,
        tags: 'cs,beacon',
      },
    ],
    '2': [
      {
        ioc_value: 'c2.example',
        ioc_type: 'domain',
        confidence_level: 50,
        first_seen_utc: '2026-01-02 00:00:00',
      },
    ],
    '3': [
      {
        ioc_value: 'A'.repeat(32),
        ioc_type: 'md5_hash',
        confidence_level: 100,
        first_seen_utc: '2026-01-02 00:00:00',
      },
    ],
    '4': [{ ioc_value: '[2001:db8::1]:443', ioc_type: 'ip:port', confidence_level: 100 }],
  };
  const p = parseFeed('threatfox', JSON.stringify(exp));
  assert.deepEqual(
    p.records.map((r) => [r.ioc_type, r.ioc, r.ioc_id, r.confidence]),
    [
      ['IPv4', '192.0.2.9', '1', 80],
      ['domain', 'c2.example', '2', 50],
      ['FileHash-MD5', 'a'.repeat(32), '3', 100],
      ['IPv6', '2001:db8::1', '4', 100],
    ],
  );
  assert.deepEqual(p.records[0].tags, ['cs', 'beacon', 'port:4444']);
  assert.match(p.records[0].description ?? '', /port 4444/);
});

test('misp: only to_ids, composites split, event and attribute tags kept', () => {
  const ev = {
    Event: {
      uuid: 'ev-1',
      info: 'Phishing wave',
      date: '2026-01-01',
      Tag: [{ name: 'tlp:amber' }],
      Attribute: [
        {
          type: 'ip-dst|port',
          value: '198.51.100.1|8443',
          to_ids: true,
          uuid: 'a1',
          timestamp: '1767225600',
        },
        { type: 'domain', value: 'ok.example', to_ids: false, uuid: 'a2' },
        {
          type: 'filename|sha256',
          value: `evil.exe|${H64('f')}`,
          to_ids: true,
          uuid: 'a3',
          Tag: [{ name: 'malware' }],
        },
        { type: 'domain|ip', value: 'x.example|192.0.2.1', to_ids: '1', uuid: 'a4' },
        { type: 'regkey|value', value: 'HKLM\\x|1', to_ids: true, uuid: 'a5' },
        { type: 'md5', value: '127.0.0.1', to_ids: true, uuid: 'a6' },
      ],
      Object: [
        { name: 'file', Attribute: [{ type: 'sha1', value: 'E'.repeat(40), to_ids: true, uuid: 'a7' }] },
      ],
    },
  };
  const p = parseFeed('misp', JSON.stringify({ response: [ev] }));
  assert.deepEqual(
    p.records.map((r) => [r.ioc_type, r.ioc, r.ioc_id]),
    [
      ['IPv4', '198.51.100.1', 'a1'],
      ['FileHash-SHA256', H64('f'), 'a3'],
      ['domain', 'x.example', 'a4'],
      ['IPv4', '192.0.2.1', 'a4'],
      ['FileHash-SHA1', 'e'.repeat(40), 'a7'],
    ],
  );
  assert.deepEqual(p.records[0].tags, ['tlp:amber', 'port:8443']);
  assert.deepEqual(p.records[1].tags, ['tlp:amber', 'malware']);
  assert.equal(p.records[0].first_seen?.toISOString(), '2026-01-01T00:00:00.000Z');
  assert.deepEqual(p.skipped, { 'MISP: to_ids not set': 1 });
  assert.deepEqual(p.unsupported, { 'unsupported type regkey|value': 1 });
  assert.deepEqual(p.rejected, { 'FileHash-MD5: not 32 hex digits': 1 });
});

test('stix: equality/OR patterns supported, the rest counted as unsupported with reason', () => {
  assert.deepEqual(parseStixPattern("[ipv4-addr:value = '10.0.0.1' OR domain-name:value = 'x.example']"), {
    iocs: [
      ['IPv4', '10.0.0.1'],
      ['domain', 'x.example'],
    ],
  });
  assert.deepEqual(parseStixPattern("[file:hashes.'SHA-256' = 'ab'] OR [url:value = 'http://x/it\\'s']"), {
    iocs: [
      ['FileHash-SHA256', 'ab'],
      ['URL', "http://x/it's"],
    ],
  });
  assert.deepEqual(parseStixPattern("[ipv4-addr:value = '1.2.3.4' AND ipv4-addr:value = '1.2.3.5']"), {
    unsupported: 'operator AND',
  });
  assert.deepEqual(parseStixPattern("[ipv4-addr:value != '1.2.3.4']"), { unsupported: 'comparison !=' });
  assert.deepEqual(parseStixPattern("[file:name = 'a.exe']"), { unsupported: 'object path file:name' });
  assert.deepEqual(parseStixPattern("[ipv4-addr:value = '1.2.3.4'] WITHIN 300 SECONDS"), {
    unsupported: 'operator WITHIN',
  });
  assert.deepEqual(parseStixPattern("[domain-name:value LIKE '%.x']"), { unsupported: 'operator LIKE' });
  const bundle = {
    type: 'bundle',
    id: 'bundle--1',
    objects: [
      {
        type: 'indicator',
        id: 'indicator--1',
        pattern_type: 'stix',
        pattern: "[ipv4-addr:value = '198.51.100.3']",
        valid_from: '2026-01-01T00:00:00Z',
        valid_until: '2026-03-01T00:00:00Z',
        confidence: 70,
        indicator_types: ['malicious-activity'],
      },
      {
        type: 'indicator',
        id: 'indicator--2',
        pattern_type: 'stix',
        pattern: "[process:name = 'x']",
        valid_from: '2026-01-01T00:00:00Z',
      },
      {
        type: 'indicator',
        id: 'indicator--3',
        pattern_type: 'sigma',
        pattern: 'title: x',
        valid_from: '2026-01-01T00:00:00Z',
      },
      {
        type: 'indicator',
        id: 'indicator--4',
        revoked: true,
        pattern_type: 'stix',
        pattern: "[ipv4-addr:value = '198.51.100.4']",
        valid_from: '2026-01-01T00:00:00Z',
      },
      { type: 'malware', id: 'malware--1', name: 'x', is_family: true },
    ],
  };
  const p = parseFeed('stix', JSON.stringify(bundle));
  assert.deepEqual(
    p.records.map((r) => [r.ioc_type, r.ioc, r.ioc_id, r.confidence]),
    [['IPv4', '198.51.100.3', 'indicator--1', 70]],
  );
  assert.equal(p.records[0].valid_until?.toISOString(), '2026-03-01T00:00:00.000Z');
  assert.equal(p.records[0].first_seen?.toISOString(), '2026-01-01T00:00:00.000Z');
  assert.deepEqual(p.unsupported, {
    'STIX pattern: object path process:name': 1,
    'STIX: pattern_type sigma': 1,
  });
  assert.deepEqual(p.skipped, { 'STIX: revoked indicator': 1, 'STIX: malware object': 1 });
});

test('text and csv: declared type, comments, auto type', () => {
  const t = parseFeed('text', '# list\n1.2.3.4\n\n5.6.7[.]8  # defanged\n999.1.1.1\n', { type: 'IPv4' });
  assert.deepEqual(
    t.records.map((r) => r.ioc),
    ['1.2.3.4', '5.6.7.8'],
  );
  assert.deepEqual(t.rejected, { 'IPv4: malformed address': 1 });
  const a = parseFeed('text', `evil.example\n${'a'.repeat(32)}\nhttp://x.example/\n`, { type: 'auto' });
  assert.deepEqual(
    a.records.map((r) => r.ioc_type),
    ['hostname', 'FileHash-MD5', 'URL'],
  );
  const c = parseFeed(
    'csv',
    `indicator,type,confidence,tags\n"evil.example",domain,60,"a;b"\n${'B'.repeat(40)},sha1,,\n`,
  );
  assert.deepEqual(
    c.records.map((r) => [r.ioc_type, r.ioc, r.confidence]),
    [
      ['domain', 'evil.example', 60],
      ['FileHash-SHA1', 'b'.repeat(40), null],
    ],
  );
  assert.deepEqual(c.records[0].tags, ['a', 'b']);
});

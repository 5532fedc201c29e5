import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { openTempLake } from '../engine/test-support.js';
import { intelSettings } from './feeds/settings.js';
import { pullFeeds, readFeedStates } from './pull.js';
import { taxiiCollections, taxiiDiscovery } from './taxii.js';

async function serve(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const URLHAUS_CSV = [
  '# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter',
  '"1","2026-01-05 10:00:00","http://198.51.100.7/x.sh","online","","malware_download","elf","https://urlhaus.abuse.ch/url/1/","r"',
  '"2","2026-01-05 11:00:00","http://bad.example/y","online","","malware_download","","https://urlhaus.abuse.ch/url/2/","r"',
].join('\n');

test('pull: ETag / If-None-Match → 304 costs nothing; interval; auth header sent; state kept in the lake', async () => {
  const seen: { path: string; inm?: string; ims?: string; key?: string }[] = [];
  let body = URLHAUS_CSV;
  const etag = () => `"${body.length}"`;
  const srv = await serve((req, res) => {
    seen.push({
      path: req.url ?? '',
      inm: req.headers['if-none-match'] as string | undefined,
      ims: req.headers['if-modified-since'] as string | undefined,
      key: req.headers['auth-key'] as string | undefined,
    });
    if (req.headers['if-none-match'] === etag()) {
      res.writeHead(304).end();
      return;
    }
    res.writeHead(200, {
      etag: etag(),
      'last-modified': 'Mon, 05 Jan 2026 12:00:00 GMT',
      'content-type': 'text/csv',
    });
    res.end(body);
  });
  const t = await openTempLake('talon-pull-');
  try {
    const settings = intelSettings({
      intel: {
        feeds: [
          {
            name: 'urlhaus',
            url: `${srv.url}/csv_recent/`,
            format: 'urlhaus',
            headers: { 'Auth-Key': 'k1' },
            interval: '0s',
          },
        ],
      },
    });
    const r1 = await pullFeeds(t.lake, [], { settings });
    assert.equal(r1[0].status, 'loaded');
    assert.equal(r1[0].report?.stored, 2);
    assert.equal(seen[0].key, 'k1');
    assert.equal(seen[0].inm, undefined);
    const r2 = await pullFeeds(t.lake, ['urlhaus'], { settings });
    assert.equal(r2[0].status, 'not-modified');
    assert.equal(seen[1].inm, '"' + URLHAUS_CSV.length + '"');
    assert.equal(seen[1].ims, 'Mon, 05 Jan 2026 12:00:00 GMT');
    const v = (await (await t.lake.table('iocs'))!.snapshot()).version;
    // A changed feed loads again; the iocs table gains the new row only.
    body =
      URLHAUS_CSV +
      '\n"3","2026-01-06 10:00:00","http://new.example/z","online","","malware_download","","",""';
    const r3 = await pullFeeds(t.lake, [], { settings });
    assert.equal(r3[0].status, 'loaded');
    assert.equal(r3[0].report?.stored, 3);
    assert.ok((await (await t.lake.table('iocs'))!.snapshot()).version > v);
    assert.equal(seen.length, 3);
    // Not due: a 1 h interval means no request at all.
    const hourly = intelSettings({ intel: { feeds: [{ ...settings.feeds[0], interval: '1h' }] } });
    const r4 = await pullFeeds(t.lake, [], { settings: hourly });
    assert.equal(r4[0].status, 'not-due');
    assert.equal(seen.length, 3);
    const st = await readFeedStates(t.lake);
    assert.equal(st.urlhaus.etag, `"${body.length}"`);
    await assert.rejects(pullFeeds(t.lake, ['nope'], { settings }), /unknown feed/);
  } finally {
    await t.cleanup();
    await srv.close();
  }
});

test('taxii 2.1: discovery, collections, objects with added_after and next-pagination', async () => {
  const ind = (n: number, added: string) => ({
    added,
    obj: {
      type: 'indicator',
      spec_version: '2.1',
      id: `indicator--0000000${n}`,
      pattern_type: 'stix',
      pattern: `[ipv4-addr:value = '198.51.100.${n}']`,
      valid_from: '2026-01-01T00:00:00Z',
    },
  });
  const all = [
    ind(1, '2026-01-01T00:00:00.000Z'),
    ind(2, '2026-01-02T00:00:00.000Z'),
    ind(3, '2026-01-03T00:00:00.000Z'),
  ];
  const requests: string[] = [];
  const srv = await serve((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    requests.push(u.pathname + u.search);
    const json = (o: unknown, h: Record<string, string> = {}) => {
      res.writeHead(200, { 'content-type': 'application/taxii+json;version=2.1', ...h });
      res.end(JSON.stringify(o));
    };
    if (u.pathname === '/taxii2/') return json({ title: 't', api_roots: ['/api1/'], default: '/api1/' });
    if (u.pathname === '/api1/collections/')
      return json({ collections: [{ id: 'c1', title: 'IoCs', can_read: true }] });
    if (u.pathname === '/api1/collections/c1/objects/') {
      const after = u.searchParams.get('added_after');
      const items = all.filter((x) => !after || x.added > after);
      const start = Number(u.searchParams.get('next') ?? 0);
      const page = items.slice(start, start + 2);
      const more = start + 2 < items.length;
      return json(
        { more, ...(more ? { next: String(start + 2) } : {}), objects: page.map((p) => p.obj) },
        page.length ? { 'X-TAXII-Date-Added-Last': page[page.length - 1].added } : {},
      );
    }
    res.writeHead(404).end();
  });
  const t = await openTempLake('talon-taxii-');
  try {
    assert.deepEqual((await taxiiDiscovery(`${srv.url}/taxii2/`)).api_roots, ['/api1/']);
    assert.deepEqual(
      (await taxiiCollections(`${srv.url}/api1`)).map((c) => c.id),
      ['c1'],
    );
    const settings = intelSettings({
      intel: {
        feeds: [
          { name: 'taxii', url: `${srv.url}/api1/`, format: 'stix', taxii_collection: 'c1', interval: '0s' },
        ],
      },
    });
    const r1 = await pullFeeds(t.lake, [], { settings });
    assert.equal(r1[0].status, 'loaded');
    assert.equal(r1[0].report?.stored, 3);
    requests.length = 0;
    all.push(ind(4, '2026-01-04T00:00:00.000Z'));
    const r2 = await pullFeeds(t.lake, [], { settings });
    assert.equal(r2[0].report?.stored, 1);
    assert.deepEqual(requests, ['/api1/collections/c1/objects/?added_after=2026-01-03T00%3A00%3A00.000Z']);
    const r3 = await pullFeeds(t.lake, [], { settings });
    assert.equal(r3[0].status, 'not-modified');
  } finally {
    await t.cleanup();
    await srv.close();
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { Enricher } from '../enrich/index.js';
import { Lake } from '../lake/index.js';
import type { FdrSource, SourceBatch } from '../sources/source.js';
import { FilesSource } from '../sources/files.js';
import { StdinSource } from '../sources/stdin.js';
import { ingest, IngestPipeline } from './pipeline.js';

interface MemFile {
  id: string;
  data: Buffer | string;
  expectedMd5?: string;
  expectedSize?: number;
  name?: string;
}

/** An in-memory source; `acked` lists acknowledged batch ids. */
function memSource(batches: MemFile[][], kind = 'files'): FdrSource & { acked: string[]; nacked: string[] } {
  const acked: string[] = [];
  const nacked: string[] = [];
  return {
    kind,
    acked,
    nacked,
    async *batches(): AsyncIterable<SourceBatch> {
      for (const [i, files] of batches.entries()) {
        yield {
          id: `b${i}`,
          files: files.map((f) => ({
            id: f.id,
            name: f.name ?? f.id,
            expectedMd5: f.expectedMd5,
            expectedSize: f.expectedSize,
            open: async () => Readable.from([Buffer.from(f.data)]),
          })),
          ack: async () => void acked.push(`b${i}`),
          nack: async () => void nacked.push(`b${i}`),
        };
      }
    },
  };
}

const ndjson = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

async function withLake(fn: (lake: Lake, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-ingest-test-'));
  const lake = await Lake.open(path.join(dir, 'lake'));
  try {
    await fn(lake, dir);
  } finally {
    lake.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const base = {
  aid: 'a1b2c3',
  cid: 'c0ffee',
  aip: '192.168.1.10',
  event_platform: 'Win',
  timestamp: '1604850899812',
};

test('typed tables: field-name rules, exact ids and times, round trip through DuckDB SQL', async () => {
  await withLake(async (lake) => {
    const src = memSource([
      [
        {
          id: 'f1',
          data: ndjson([
            {
              ...base,
              event_simpleName: 'NetworkListenIP4',
              LocalPort: '3389',
              ContextTimeStamp: '1604855131.666',
              RawProcessId: '18446744072636268557',
              ContextProcessId: '9960000700989070560',
              ContextThreadId: '',
              Tags: ['312', '11544872091698'],
              EventOrigin: 17,
              Info: { a: 1 },
            },
            {
              ...base,
              event_simpleName: 'NetworkListenIP4',
              LocalPort: 445,
              ContextTimeStamp: 133145666190000000,
            },
          ]),
        },
      ],
    ]);
    const s = await ingest(lake, src, { enricher: null, progress: false });
    assert.equal(s.events, 2);
    assert.equal(s.quarantined, 0);
    assert.deepEqual(s.tables, { NetworkListenIP4: 2 });
    assert.deepEqual(src.acked, ['b0']);
    await lake.registerViews();
    const types = await lake.db.allJson<{ column_name: string; column_type: string }>(
      `SELECT column_name, column_type FROM (DESCRIBE networklistenip4)`,
    );
    const t = Object.fromEntries(types.map((r) => [r.column_name, r.column_type]));
    // Delta `timestamp` is UTC-adjusted: the lake reads it back as TIMESTAMP WITH TIME ZONE
    assert.match(t.timestamp, /^TIMESTAMP/);
    assert.match(t.ContextTimeStamp, /^TIMESTAMP/);
    assert.equal(t.LocalPort, 'BIGINT');
    assert.equal(t.RawProcessId, 'DECIMAL(20,0)');
    assert.equal(t.ContextProcessId, 'DECIMAL(20,0)');
    assert.equal(t.Tags, 'VARCHAR');
    assert.equal(t.EventOrigin, 'VARCHAR');
    assert.equal(t.event_date, 'DATE');
    const rows = await lake.db.allJson(
      `SELECT CAST(CAST("timestamp" AS TIMESTAMP) AS VARCHAR) ts, CAST(CAST(ContextTimeStamp AS TIMESTAMP) AS VARCHAR) cts, LocalPort, ` +
        `CAST(RawProcessId AS VARCHAR) raw, CAST(ContextProcessId AS VARCHAR) cpid, ContextThreadId, Tags, ` +
        `EventOrigin, Info, CAST(event_date AS VARCHAR) d FROM networklistenip4 ORDER BY LocalPort DESC`,
    );
    assert.deepEqual(rows[0], {
      ts: '2020-11-08 15:54:59.812',
      cts: '2020-11-08 17:05:31.666',
      LocalPort: '3389',
      raw: '18446744072636268557',
      cpid: '9960000700989070560',
      ContextThreadId: null,
      Tags: '["312","11544872091698"]',
      EventOrigin: '17',
      Info: '{"a":1}',
      d: '2020-11-08',
    });
    assert.equal(rows[1].cts, '2022-12-03 18:43:39'); // FILETIME converted
    // SQL over the typed columns works as numbers and times
    const [agg] = await lake.db.allJson(
      `SELECT sum(LocalPort) AS ports, max(ContextTimeStamp) > TIMESTAMP '2022-01-01' AS later FROM networklistenip4`,
    );
    assert.deepEqual(agg, { ports: '3834', later: true });
  });
});

test('case-colliding fields and schema evolution across batches and a restart', async () => {
  await withLake(async (lake) => {
    const ev = { ...base, event_simpleName: 'CaseTest' };
    await ingest(lake, memSource([[{ id: 'f1', data: ndjson([{ ...ev, seq: '1', Name: 'A' }]) }]]), {
      enricher: null,
      progress: false,
    });
    await ingest(
      lake,
      memSource([[{ id: 'f2', data: ndjson([{ ...ev, seq: '2', name: 'b', NewField: 'n1' }]) }]]),
      { enricher: null, progress: false },
    );
    // a new process: the mapping comes back from the table schema
    await ingest(
      lake,
      memSource([
        [
          {
            id: 'f3',
            data: ndjson([{ ...ev, seq: '3', name: 'd', Name: 'C', NAME: 'E', 'User Name': 'u' }]),
          },
        ],
      ]),
      { enricher: null, progress: false },
    );
    await lake.registerViews();
    const rows = await lake.db.allJson(
      `SELECT "Name", "name__2", "NAME__3", "NewField", "User_x20_Name" FROM casetest ORDER BY seq`,
    );
    assert.deepEqual(rows, [
      { Name: 'A', name__2: null, NAME__3: null, NewField: null, User_x20_Name: null },
      { Name: null, name__2: 'b', NAME__3: null, NewField: 'n1', User_x20_Name: null },
      { Name: 'C', name__2: 'd', NAME__3: 'E', NewField: null, User_x20_Name: 'u' },
    ]);
  });
});

test('every quarantine reason is recorded; good events of the same files still land', async () => {
  await withLake(async (lake) => {
    const good = (i: number): string =>
      JSON.stringify({ ...base, event_simpleName: 'ProcessRollup2', CommandLine: `cmd ${i}` });
    const plain = Buffer.concat([
      Buffer.from(good(1) + '\n'),
      Buffer.from('{not json\n'),
      Buffer.from('[1,2]\n'),
      Buffer.from(JSON.stringify({ ...base, CommandLine: 'no name' }) + '\n'),
      Buffer.from('{"event_simpleName":"x","a":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}\n'),
      Buffer.from(
        JSON.stringify({ ...base, event_simpleName: 'ProcessRollup2', pad: 'z'.repeat(3000) }) + '\n',
      ),
      Buffer.from(JSON.stringify({ ...base, event_simpleName: 'NetworkListenIP4', LocalPort: 'abc' }) + '\n'),
      Buffer.from(JSON.stringify({ ...base, event_simpleName: 'bad name!' }) + '\n'),
      Buffer.from(good(2) + '\n'),
    ]);
    const many = Array.from({ length: 3000 }, (_, i) => good(100 + i)).join('\n') + '\n';
    const gz = gzipSync(many);
    const truncated = gz.subarray(0, Math.floor(gz.length / 2));
    const corrupt = Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), Buffer.alloc(40, 0xff)]);
    const md5Bad = gzipSync(good(9) + '\n');
    const sizeBad = Buffer.from(good(10) + '\n');
    const src = memSource([
      [
        { id: 'plain', data: plain },
        { id: 'trunc', data: truncated },
        { id: 'corrupt', data: corrupt },
        { id: 'md5', data: md5Bad, expectedMd5: 'a'.repeat(32) },
        { id: 'size', data: sizeBad, expectedSize: 3 },
        {
          id: 'md5ok',
          data: md5Bad,
          expectedMd5: createHash('md5').update(md5Bad).digest('hex'),
          expectedSize: md5Bad.length,
        },
      ],
    ]);
    const s = await ingest(lake, src, {
      enricher: null,
      progress: false,
      maxLineBytes: 2000,
      quarantineRawBytes: 100,
    });
    await lake.registerViews();
    const q = await lake.db.allJson<{ file_id: string; line: string | null; reason: string; raw: string }>(
      `SELECT file_id, line, reason, raw FROM quarantine ORDER BY file_id, line NULLS LAST`,
    );
    const byFile = (id: string): string[] =>
      q.filter((r) => r.file_id === id).map((r) => `${r.line}:${r.reason}`);
    assert.deepEqual(byFile('plain'), [
      '2:invalid_json',
      '3:not_an_object',
      '4:missing_event_simpleName',
      '5:invalid_utf8',
      '6:line_too_long',
      '7:type_mismatch: LocalPort',
      '8:invalid_event_simpleName',
    ]);
    assert.ok(q.filter((r) => r.reason === 'line_too_long')[0].raw.length <= 100);
    const trunc = byFile('trunc');
    assert.equal(trunc.length, 1);
    assert.match(trunc[0], /truncated_gzip/);
    assert.deepEqual(
      byFile('corrupt').map((r) => r.split(':')[1]),
      ['corrupt_gzip'],
    );
    assert.deepEqual(byFile('md5'), ['null:md5_mismatch']);
    assert.deepEqual(byFile('size'), ['null:size_mismatch']);
    assert.deepEqual(byFile('md5ok'), []);
    const keptFromTruncated = Number(trunc[0].split(':')[0]) - 1;
    assert.ok(keptFromTruncated > 100 && keptFromTruncated < 3000);
    const [{ n }] = await lake.db.allJson<{ n: string }>(`SELECT count(*) AS n FROM processrollup2`);
    // plain: 2 good; truncated: the lines before the damage; md5ok: 1; md5/size mismatch: none
    assert.equal(Number(n), 2 + keptFromTruncated + 1);
    assert.equal(s.events, Number(n));
    assert.equal(s.quarantined, q.length);
    const cmds = await lake.db.allJson(
      `SELECT CommandLine FROM processrollup2 WHERE CommandLine IN ('cmd 9', 'cmd 10')`,
    );
    assert.deepEqual(cmds, [{ CommandLine: 'cmd 9' }]);
    assert.deepEqual(src.acked, ['b0']);
  });
});

test('duplicate delivery adds nothing; a crash between table commits is repaired by the txn', async () => {
  await withLake(async (lake) => {
    const rows = (t: string, n: number): string =>
      ndjson(
        Array.from({ length: n }, (_, i) => ({ ...base, event_simpleName: t, CommandLine: `${t} ${i}` })),
      );
    const batches = (): MemFile[][] => [
      [{ id: 'a', data: rows('ProcessRollup2', 5) + rows('DnsRequest', 3) }],
      [{ id: 'b', data: rows('UserLogon', 2) + '{bad\n' }],
    ];
    const first = await ingest(lake, memSource(batches()), { enricher: null, progress: false });
    assert.equal(first.events, 10);
    assert.equal(first.quarantined, 1);
    const again = memSource(batches());
    const second = await ingest(lake, again, { enricher: null, progress: false });
    assert.equal(second.events, 0);
    assert.equal(second.files, 0);
    assert.equal(second.skippedFiles, 2);
    assert.deepEqual(again.acked, ['b0', 'b1']); // redelivered batches are still acknowledged

    // crash after the event tables, before ingest_log: the replay must skip the done tables
    const proto = IngestPipeline.prototype as unknown as {
      writeIngestLog: (...a: unknown[]) => Promise<void>;
    };
    const original = proto.writeIngestLog;
    proto.writeIngestLog = async () => {
      throw new Error('simulated crash');
    };
    const crashing = memSource([[{ id: 'c', data: rows('ProcessRollup2', 4) + rows('DnsRequest', 1) }]]);
    try {
      await assert.rejects(ingest(lake, crashing, { enricher: null, progress: false }), /simulated crash/);
    } finally {
      proto.writeIngestLog = original;
    }
    assert.deepEqual(crashing.acked, []);
    assert.deepEqual(crashing.nacked, ['b0']);
    const skipped: string[][] = [];
    const replay = await ingest(
      lake,
      memSource([[{ id: 'c', data: rows('ProcessRollup2', 4) + rows('DnsRequest', 1) }]]),
      {
        enricher: null,
        progress: false,
        onCommit: (g) => skipped.push(g.skippedTables),
      },
    );
    assert.deepEqual(skipped, [['DnsRequest', 'ProcessRollup2']]);
    assert.equal(replay.events, 0);
    await lake.registerViews();
    const counts = await lake.db.allJson(
      `SELECT (SELECT count(*) FROM processrollup2) p, (SELECT count(*) FROM dnsrequest) d, ` +
        `(SELECT count(*) FROM userlogon) u, (SELECT count(*) FROM quarantine) q, (SELECT count(*) FROM ingest_log) l`,
    );
    assert.deepEqual(counts, [{ p: '9', d: '4', u: '2', q: '1', l: '3' }]);
  });
});

test('enrichment: aip/RemoteAddressIP4 geo, AS and class, DomainName_psl', async () => {
  const enricher = await Enricher.open();
  try {
    await withLake(async (lake) => {
      const src = memSource([
        [
          {
            id: 'e',
            data: ndjson([
              { ...base, aip: '8.8.8.8', event_simpleName: 'DnsRequest', DomainName: 'www.example.co.uk' },
              {
                ...base,
                aip: '8.8.8.8',
                event_simpleName: 'NetworkConnectIP4',
                RemoteAddressIP4: '10.1.2.3',
              },
            ]),
          },
        ],
      ]);
      await ingest(lake, src, { enricher, progress: false });
      await lake.registerViews();
      const expected = enricher.lookupIp('8.8.8.8');
      assert.equal(expected.ip_class, 'public');
      const [dns] = await lake.db.allJson<Record<string, unknown>>(
        `SELECT aip_class, aip_as.as_number AS asn, aip_as.as_org AS org, aip_geo.country_code AS cc, ` +
          `DomainName_psl.registered_domain AS rd, DomainName_psl.public_suffix AS ps, DomainName_psl.subdomain AS sub FROM dnsrequest`,
      );
      assert.equal(dns.aip_class, 'public');
      assert.equal(Number(dns.asn), expected.as?.as_number);
      assert.equal(dns.org, expected.as?.as_org);
      assert.equal(dns.cc, expected.geo?.country_code ?? null);
      assert.deepEqual([dns.rd, dns.ps, dns.sub], ['example.co.uk', 'co.uk', 'www']);
      const [net] = await lake.db.allJson<Record<string, unknown>>(
        `SELECT RemoteAddressIP4_class AS c, RemoteAddressIP4_geo AS g, RemoteAddressIP4_as AS a FROM networkconnectip4`,
      );
      assert.deepEqual(net, { c: 'private', g: null, a: null });
    });
  } finally {
    enricher.close();
  }
});

test('FDR layout from folders: secondary data by path and shape, manifests verify MD5, latest host row wins', async () => {
  await withLake(async (lake, dir) => {
    const root = path.join(dir, 'fdr');
    const batch = path.join(root, 'data', 'b1');
    await mkdir(batch, { recursive: true });
    await mkdir(path.join(root, 'fdrv2', 'aidmaster'), { recursive: true });
    await mkdir(path.join(root, 'manifests'), { recursive: true });
    const p0 = gzipSync(
      ndjson([{ ...base, event_simpleName: 'UserLogon', UserSid: 'S-1-5-21-1', UserName: 'alice' }]),
    );
    const p1 = gzipSync(
      ndjson([{ ...base, event_simpleName: 'UserLogon', UserSid: 'S-1-5-21-2', UserName: 'bob' }]),
    );
    await writeFile(path.join(batch, 'part-00000.gz'), p0);
    await writeFile(path.join(batch, 'part-00001.gz'), p1);
    await writeFile(
      path.join(root, 'manifests', 'b1.json'),
      JSON.stringify({
        files: [
          {
            path: 'data/b1/part-00000.gz',
            size: p0.length,
            checksum: createHash('md5').update(p0).digest('hex'),
          },
          { path: 'data/b1/part-00001.gz', size: p1.length, checksum: 'f'.repeat(32) },
        ],
      }),
    );
    await writeFile(
      path.join(root, 'fdrv2', 'aidmaster', 'part-0.gz'),
      gzipSync(
        ndjson([
          { aid: 'a1b2c3', ComputerName: 'OLD-NAME', AgentVersion: '7.1', Time: '1604850000.1' },
          { aid: 'a1b2c3', ComputerName: 'NEW-NAME', AgentVersion: '7.2', Time: 'none' },
          { aid: 'ffff', ComputerName: 'OTHER', AgentVersion: '7.2' },
        ]),
      ),
    );
    // userinfo recognised by shape in a plain file
    await writeFile(
      path.join(root, 'users.log'),
      ndjson([
        { UserSid_readable: 'S-1-5-21-1', AccountType: 'Domain User', LastLoggedOnHost: 'H1', cid: 'c0ffee' },
      ]),
    );
    await writeFile(path.join(root, 'ground-truth.json'), '{"not":"events"}');
    const s = await ingest(lake, new FilesSource([root]), { enricher: null, progress: false });
    assert.deepEqual(s.tables, { aidmaster: 2, UserLogon: 1, userinfo: 1 });
    await lake.registerViews();
    const hosts = await lake.db.allJson(`SELECT aid, ComputerName, AgentVersion FROM aidmaster ORDER BY aid`);
    assert.deepEqual(hosts, [
      { aid: 'a1b2c3', ComputerName: 'NEW-NAME', AgentVersion: '7.2' },
      { aid: 'ffff', ComputerName: 'OTHER', AgentVersion: '7.2' },
    ]);
    const q = await lake.db.allJson(`SELECT reason FROM quarantine`);
    assert.deepEqual(q, [{ reason: 'md5_mismatch' }]);
    // the host name joins onto events
    const joined = await lake.db.allJson(
      `SELECT e.UserName, h.ComputerName, u.AccountType FROM userlogon e JOIN aidmaster h USING (aid) JOIN userinfo u USING (UserSid)`,
    );
    assert.deepEqual(joined, [{ UserName: 'alice', ComputerName: 'NEW-NAME', AccountType: 'Domain User' }]);
    // a second host file updates the same aid instead of adding a row
    await writeFile(
      path.join(root, 'fdrv2', 'aidmaster', 'part-1.gz'),
      gzipSync(ndjson([{ aid: 'ffff', ComputerName: 'RENAMED', AgentVersion: '7.3' }])),
    );
    await ingest(lake, new FilesSource([root]), { enricher: null, progress: false });
    await lake.registerViews();
    const after = await lake.db.allJson(`SELECT aid, ComputerName FROM aidmaster ORDER BY aid`);
    assert.deepEqual(after, [
      { aid: 'a1b2c3', ComputerName: 'NEW-NAME' },
      { aid: 'ffff', ComputerName: 'RENAMED' },
    ]);
  });
});

test('aidmaster/userinfo delivered out of order: an older export never overwrites a newer row; within a file the newest row per key wins', async () => {
  await withLake(async (lake) => {
    const run = async (files: MemFile[]) => {
      await ingest(lake, memSource([files]), { enricher: null, progress: false });
      await lake.registerViews();
      return {
        hosts: await lake.db.allJson(`SELECT aid, ComputerName FROM aidmaster ORDER BY aid`),
        users: await lake.db.allJson(`SELECT UserSid, UserName FROM userinfo ORDER BY UserSid`),
      };
    };
    const newer = await run([
      {
        id: 'am-newer',
        name: 'fdrv2/aidmaster/newer.gz',
        data: ndjson([
          { aid: 'h1', ComputerName: 'H1-NEW', AgentVersion: '7.2', Time: '1700000200.5' },
          // a later line, but an older export of the host
          { aid: 'h1', ComputerName: 'H1-OLDER-LINE', AgentVersion: '7.1', Time: '1700000100.0' },
          { aid: 'h2', ComputerName: 'H2-NEW', AgentVersion: '7.2', Time: '1700000200.0' },
        ]),
      },
      {
        id: 'ui-newer',
        name: 'fdrv2/userinfo/newer.gz',
        data: ndjson([{ UserSid: 'S-1-5-21-1', UserName: 'alice-new', _time: '1700000200.0' }]),
      },
    ]);
    assert.deepEqual(newer.hosts, [
      { aid: 'h1', ComputerName: 'H1-NEW' },
      { aid: 'h2', ComputerName: 'H2-NEW' },
    ]);
    // The older batch arrives afterwards (replayed, redelivered late).
    const older = await run([
      {
        id: 'am-older',
        name: 'fdrv2/aidmaster/older.gz',
        data: ndjson([
          { aid: 'h1', ComputerName: 'H1-OLD', AgentVersion: '7.0', Time: '1700000000.0' },
          { aid: 'h2', ComputerName: 'H2-NEWER', AgentVersion: '7.3', Time: '1700000300.0' },
          { aid: 'h3', ComputerName: 'H3', AgentVersion: '7.0', Time: '1700000000.0' },
        ]),
      },
      {
        id: 'ui-older',
        name: 'fdrv2/userinfo/older.gz',
        data: ndjson([{ UserSid: 'S-1-5-21-1', UserName: 'alice-old', _time: '1699999000.0' }]),
      },
    ]);
    assert.deepEqual(older.hosts, [
      { aid: 'h1', ComputerName: 'H1-NEW' },
      { aid: 'h2', ComputerName: 'H2-NEWER' },
      { aid: 'h3', ComputerName: 'H3' },
    ]);
    assert.deepEqual(older.users, [{ UserSid: 'S-1-5-21-1', UserName: 'alice-new' }]);
    // A row without a time cannot be ordered: the last delivered one wins, as before.
    const untimed = await run([
      {
        id: 'am-untimed',
        name: 'fdrv2/aidmaster/untimed.gz',
        data: ndjson([{ aid: 'h3', ComputerName: 'H3-UNTIMED', AgentVersion: '7.0', Time: 'none' }]),
      },
    ]);
    assert.deepEqual(untimed.hosts[2], { aid: 'h3', ComputerName: 'H3-UNTIMED' });
  });
});

test('stdin: spooled, identified by content, ingested once', async () => {
  await withLake(async (lake) => {
    const data = gzipSync(ndjson([{ ...base, event_simpleName: 'AgentOnline' }]));
    const one = new StdinSource(Readable.from([data]));
    const s1 = await ingest(lake, one, { enricher: null, progress: false });
    await one.close();
    const two = new StdinSource(Readable.from([data]));
    const s2 = await ingest(lake, two, { enricher: null, progress: false });
    await two.close();
    assert.equal(s1.events, 1);
    assert.equal(s2.events, 0);
    assert.equal(s2.skippedFiles, 1);
  });
});

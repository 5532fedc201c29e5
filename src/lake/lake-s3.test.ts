/**
 * A lake on S3, end to end through `Lake.open('s3://bucket/prefix')`, against fauxqs with S3's
 * conditional writes (see src/testing/fauxqs.ts). The S3 endpoint and credentials reach the store the
 * way a user gives them: environment variables (TALON_S3_ENDPOINT, AWS_ACCESS_KEY_ID, …).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Lake } from './lake.js';
import { startFauxqs, type Fauxqs } from '../testing/fauxqs.js';
import { S3Store } from './store-s3.js';

let emu: Fauxqs;
const tmpDirs: string[] = [];
const lakes: Lake[] = [];

async function cacheDir(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'talon-lake-s3-'));
  tmpDirs.push(d);
  return d;
}

async function openLake(url: string): Promise<Lake> {
  const lake = await Lake.open(url, { cacheDir: await cacheDir() });
  lakes.push(lake);
  return lake;
}

async function keys(store: S3Store, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

before(async () => {
  emu = await startFauxqs({ buckets: ['lake-bucket'] });
  process.env.TALON_S3_ENDPOINT = emu.endpoint;
  process.env.AWS_ACCESS_KEY_ID = emu.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = emu.credentials.secretAccessKey;
  process.env.AWS_REGION = emu.region;
});

after(async () => {
  for (const l of lakes) l.close();
  await emu.stop();
  for (const d of tmpDirs) await fs.rm(d, { recursive: true, force: true });
});

const rows = (from: number, n: number, day: string) => `
  SELECT ('aid-' || (i % 7))::VARCHAR AS aid, i::BIGINT AS seq, 'user' || i AS UserName,
         TIMESTAMP '${day} 08:00:00' + to_seconds(i) AS "timestamp", DATE '${day}' AS event_date
  FROM range(${from}, ${from + n}) t(i)`;

describe('Lake on S3 (fauxqs)', () => {
  it('creates a table, appends, and reads the rows back; the objects live under the prefix', async () => {
    const url = 's3://lake-bucket/prod/lake';
    const lake = await openLake(url);
    const table = await lake.createTable('UserLogon', { partitionColumns: ['event_date'] });
    await table.append(rows(0, 50, '2024-05-01'));
    await table.append(rows(50, 30, '2024-05-02'));

    const snap = await table.snapshot();
    assert.equal(snap.version, 2);
    const got = await lake.db.all<{ n: bigint; s: bigint; d: bigint }>(
      `SELECT count(*) AS n, sum(seq) AS s, count(DISTINCT event_date) AS d FROM ${await snap.scan()}`,
    );
    assert.deepEqual(got[0], { n: 80n, s: BigInt((79 * 80) / 2), d: 2n });

    // What is on S3, seen through an independent client.
    const raw = await S3Store.open('s3://lake-bucket/prod/lake', { cacheDir: await cacheDir() });
    const objects = await keys(raw, 'userlogon/');
    for (const v of [0, 1, 2]) {
      assert.ok(objects.includes(`userlogon/_delta_log/${String(v).padStart(20, '0')}.json`), `commit ${v}`);
    }
    const parquet = objects.filter((k) => k.endsWith('.parquet') && !k.includes('_delta_log'));
    assert.equal(parquet.length, snap.files.length);
    assert.ok(parquet.some((k) => k.includes('event_date=2024-05-01/')));

    // A second process-like reader with an empty cache downloads and reads the same rows.
    const reader = await openLake(url);
    assert.deepEqual(await reader.tableNames(), ['UserLogon']);
    const t2 = (await reader.table('userlogon'))!;
    const snap2 = await t2.snapshot();
    const got2 = await reader.db.all<{ n: bigint; s: bigint }>(
      `SELECT count(*) AS n, sum(seq) AS s FROM ${await snap2.scan("event_date = DATE '2024-05-02'")}`,
    );
    assert.deepEqual(got2[0], { n: 30n, s: BigInt(((50 + 79) * 30) / 2) });
  });

  it('concurrent appends from two Lake instances both land, each in its own version', async (t) => {
    const url = 's3://lake-bucket/concurrent';
    const a = await openLake(url);
    const b = await openLake(url);
    await a.createTable('DnsRequest', { partitionColumns: ['event_date'] });
    const ta = (await a.table('DnsRequest'))!;
    const tb = (await b.table('dnsrequest'))!;
    const perWriter = 4;
    await Promise.all([
      (async () => {
        for (let i = 0; i < perWriter; i++) await ta.append(rows(i * 10, 10, '2024-06-01'));
      })(),
      (async () => {
        for (let i = 0; i < perWriter; i++) await tb.append(rows(1000 + i * 10, 10, '2024-06-02'));
      })(),
    ]);

    t.diagnostic(
      `S3 refused conditional commit PUTs: ${emu.refused.preconditionFailed}× 412, ${emu.refused.conflict}× 409`,
    );
    const c = await openLake(url);
    const tc = (await c.table('DnsRequest'))!;
    const snap = await tc.snapshot();
    assert.equal(snap.version, 2 * perWriter, 'version 0 (create) + one version per append');
    const got = await c.db.all<{ n: bigint; a: bigint; b: bigint }>(
      `SELECT count(*) AS n, count(*) FILTER (WHERE seq < 1000) AS a, count(*) FILTER (WHERE seq >= 1000) AS b
       FROM ${await snap.scan()}`,
    );
    assert.deepEqual(got[0], {
      n: BigInt(20 * perWriter),
      a: BigInt(10 * perWriter),
      b: BigInt(10 * perWriter),
    });
    const history = await tc.history();
    assert.equal(history.length, 2 * perWriter + 1);
    assert.deepEqual(
      history.map((h) => h.version).sort((x, y) => x - y),
      Array.from({ length: 2 * perWriter + 1 }, (_, i) => i),
    );
  });
});

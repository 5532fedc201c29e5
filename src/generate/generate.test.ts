import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { generateFdr, type GenerateSummary } from './index.js';

const BASE = {
  events: 6000,
  hosts: 12,
  days: 3,
  start: '2026-03-02T00:00:00.000Z',
  progress: false,
} as const;

let root: string;
let runA: string;
let summaryA: GenerateSummary;

async function listFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.posix.join(rel, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(dir, r)));
    else out.push(r);
  }
  return out.sort();
}

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'talon-generate-'));
  runA = path.join(root, 'a');
  summaryA = await generateFdr({ ...BASE, out: runA, seed: 'alpha' });
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('same seed and options give byte-identical output; another seed differs', async () => {
  const runB = path.join(root, 'b');
  await generateFdr({ ...BASE, out: runB, seed: 'alpha' });
  const filesA = await listFiles(runA);
  const filesB = await listFiles(runB);
  assert.deepEqual(filesB, filesA);
  for (const f of filesA) {
    const [x, y] = await Promise.all([readFile(path.join(runA, f)), readFile(path.join(runB, f))]);
    assert.ok(x.equals(y), `${f} differs between two runs with the same seed`);
  }
  const runC = path.join(root, 'c');
  await generateFdr({ ...BASE, out: runC, seed: 'beta' });
  const filesC = await listFiles(runC);
  assert.notDeepEqual(filesC, filesA, 'batch uuids must depend on the seed');
  const gtA = await readFile(path.join(runA, 'ground-truth.json'), 'utf8');
  const gtC = await readFile(path.join(runC, 'ground-truth.json'), 'utf8');
  assert.notEqual(gtC, gtA);
});

test('refuses to overwrite earlier output without force, replaces it with force', async () => {
  const dir = path.join(root, 'force');
  await generateFdr({ ...BASE, events: 1500, out: dir, seed: 1 });
  await assert.rejects(generateFdr({ ...BASE, events: 1500, out: dir, seed: 2 }), /--force/);
  await generateFdr({ ...BASE, events: 1500, out: dir, seed: 2, force: true });
  const manifests = await readdir(path.join(dir, 'manifests'));
  const s = JSON.parse(await readFile(path.join(dir, 'ground-truth.json'), 'utf8')) as {
    generator: { seed: string };
  };
  assert.equal(s.generator.seed, '2');
  // Only the second run's batches are left.
  const data = await readdir(path.join(dir, 'data'));
  assert.equal(manifests.length, data.length + 2);
});

interface Manifest {
  cid: string;
  timestamp: number;
  fileCount: number;
  totalSize: number;
  bucket: string;
  pathPrefix: string;
  files: { path: string; size: number; checksum: string }[];
}

test('every batch has an FDR SQS manifest whose sizes and MD5s match the files', async () => {
  const names = await readdir(path.join(runA, 'manifests'));
  assert.equal(names.length, summaryA.batches + 2);
  const prefixes = new Set<string>();
  for (const n of names) {
    const m = JSON.parse(await readFile(path.join(runA, 'manifests', n), 'utf8')) as Manifest;
    assert.deepEqual(Object.keys(m), [
      'cid',
      'timestamp',
      'fileCount',
      'totalSize',
      'bucket',
      'pathPrefix',
      'files',
    ]);
    assert.match(m.cid, /^[0-9a-f]{32}$/);
    assert.equal(typeof m.timestamp, 'number');
    assert.match(m.pathPrefix, /^(data|fdrv2\/aidmaster|fdrv2\/userinfo)\/[0-9a-f-]{36}$/);
    assert.equal(n, `${m.pathPrefix.split('/').pop()}.json`);
    prefixes.add(m.pathPrefix.split('/').slice(0, -1).join('/'));
    assert.equal(m.fileCount, m.files.length);
    let total = 0;
    for (const f of m.files) {
      assert.ok(f.path.startsWith(`${m.pathPrefix}/part-`), f.path);
      const bytes = await readFile(path.join(runA, f.path));
      assert.equal(bytes.length, f.size, `${f.path} size`);
      assert.equal(createHash('md5').update(bytes).digest('hex'), f.checksum, `${f.path} md5`);
      total += f.size;
    }
    assert.equal(m.totalSize, total);
    // Every file of the batch folder is listed.
    const onDisk = (await readdir(path.join(runA, m.pathPrefix))).map((x) => `${m.pathPrefix}/${x}`).sort();
    assert.deepEqual(onDisk, m.files.map((f) => f.path).sort());
  }
  assert.deepEqual([...prefixes].sort(), ['data', 'fdrv2/aidmaster', 'fdrv2/userinfo']);
});

/** Data part paths in delivery order (manifest timestamp, then part number). */
async function dataFilesInOrder(dir: string): Promise<string[]> {
  const manifests: Manifest[] = [];
  for (const n of await readdir(path.join(dir, 'manifests'))) {
    manifests.push(JSON.parse(await readFile(path.join(dir, 'manifests', n), 'utf8')) as Manifest);
  }
  return manifests
    .filter((m) => m.pathPrefix.startsWith('data/'))
    .sort((a, b) => a.timestamp - b.timestamp)
    .flatMap((m) => m.files.map((f) => f.path));
}

const REQUIRED_TYPES = [
  'ProcessRollup2',
  'SyntheticProcessRollup2',
  'DnsRequest',
  'NetworkConnectIP4',
  'NetworkConnectIP6',
  'NetworkListenIP4',
  'NetworkListenIP6',
  'NetworkReceiveAcceptIP4',
  'UserLogon',
  'UserLogonFailed2',
  'SuspiciousPeFileWritten',
  'SuspiciousRegAsepUpdate',
  'AgentOnline',
  'EndOfProcess',
];

test('data parts are valid gzip NDJSON with the FDR envelope, string values and the required types', async () => {
  const files = await dataFilesInOrder(runA);
  assert.deepEqual(
    files.slice().sort(),
    (await listFiles(runA)).filter((f) => f.startsWith('data/')),
  );
  assert.ok(files.length >= summaryA.batches * 2, 'several parts per batch');
  const types = new Map<string, number>();
  const ids = new Set<string>();
  const processIds = new Map<string, Set<string>>();
  const contextIds: [string, string][] = [];
  let total = 0;
  let lastTs = 0;
  for (const f of files) {
    const text = gunzipSync(await readFile(path.join(runA, f))).toString('utf8');
    assert.ok(text.endsWith('\n'));
    for (const line of text.split('\n').slice(0, -1)) {
      const e = JSON.parse(line) as Record<string, unknown>;
      total++;
      for (const [k, v] of Object.entries(e)) assert.equal(typeof v, 'string', `${k} must be a string`);
      const ev = e as Record<string, string>;
      assert.match(ev.aid, /^[0-9a-f]{32}$/);
      assert.match(ev.cid, /^[0-9a-f]{32}$/);
      assert.match(ev.aip, /^\d+\.\d+\.\d+\.\d+$/);
      assert.match(ev.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.match(ev.timestamp, /^\d{13}$/);
      assert.match(ev.event_platform, /^(Win|Mac|Lin)$/);
      assert.match(ev.name, new RegExp(`^${ev.event_simpleName}(Mac|Lin)?V\\d+$`));
      assert.equal(ev.name.includes('Mac'), ev.event_platform === 'Mac');
      for (const k of ['ConfigBuild', 'ConfigStateHash', 'Entitlements', 'EffectiveTransmissionClass'])
        assert.ok(k in ev, k);
      if ('ContextTimeStamp' in ev) {
        assert.match(ev.ContextTimeStamp, /^\d{10}\.\d{3}$/);
        assert.ok(
          Number(ev.ContextTimeStamp) * 1000 <= Number(ev.timestamp),
          'sensor time precedes cloud time',
        );
      }
      assert.ok(!ids.has(ev.id), 'ids are unique');
      ids.add(ev.id);
      // Parts of consecutive batches cover consecutive time slices.
      assert.ok(Number(ev.timestamp) >= lastTs - 60 * 60 * 1000, 'roughly time ordered');
      lastTs = Math.max(lastTs, Number(ev.timestamp));
      types.set(ev.event_simpleName, (types.get(ev.event_simpleName) ?? 0) + 1);
      if (ev.event_simpleName === 'ProcessRollup2' || ev.event_simpleName === 'SyntheticProcessRollup2') {
        let s = processIds.get(ev.aid);
        if (!s) processIds.set(ev.aid, (s = new Set()));
        s.add(ev.TargetProcessId);
      }
      if (ev.event_simpleName === 'DnsRequest' || ev.event_simpleName === 'NetworkConnectIP4') {
        contextIds.push([ev.aid, ev.ContextProcessId]);
      }
    }
  }
  assert.equal(total, 6000);
  assert.equal(total, summaryA.events);
  for (const t of REQUIRED_TYPES) assert.ok((types.get(t) ?? 0) > 0, `type ${t} present`);
  assert.deepEqual(Object.fromEntries(types), summaryA.eventsByType);
  // Network and DNS activity belongs to processes the data reports (TargetProcessId → ContextProcessId).
  const resolved = contextIds.filter(([aid, pid]) => processIds.get(aid)?.has(pid)).length;
  assert.ok(
    resolved / contextIds.length > 0.95,
    `only ${resolved}/${contextIds.length} ContextProcessIds resolve`,
  );
});

test('fdrv2 aidmaster and userinfo rows describe the hosts and users of the events', async () => {
  const files = await listFiles(runA);
  const read = async (prefix: string): Promise<Record<string, string>[]> => {
    const parts = files.filter((f) => f.startsWith(prefix));
    assert.equal(parts.length, 1);
    return gunzipSync(await readFile(path.join(runA, parts[0])))
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>);
  };
  const hosts = await read('fdrv2/aidmaster/');
  const users = await read('fdrv2/userinfo/');
  assert.equal(hosts.length, 12);
  for (const h of hosts) {
    assert.ok(!('event_simpleName' in h));
    for (const k of [
      'aid',
      'cid',
      'ComputerName',
      'AgentVersion',
      'MAC',
      'OU',
      'SiteName',
      'event_platform',
      'aip',
    ]) {
      assert.ok(typeof h[k] === 'string' && h[k] !== '', `aidmaster ${k}`);
    }
    assert.match(h.MAC, /^([0-9A-F]{2}-){5}[0-9A-F]{2}$/);
  }
  assert.equal(users.length, summaryA.users);
  for (const u of users) {
    assert.ok(!('event_simpleName' in u));
    assert.match(u.UserSid, /^S-1-5-21-\d+-\d+-\d+-\d+$/);
    assert.ok(u.UserName);
  }
  const gt = JSON.parse(await readFile(path.join(runA, 'ground-truth.json'), 'utf8')) as {
    hosts: { aid: string }[];
  };
  assert.deepEqual(hosts.map((h) => h.aid).sort(), gt.hosts.map((h) => h.aid).sort());
});

test('memory stays bounded by the part size on a bigger run', async () => {
  const dir = path.join(root, 'big');
  const s = await generateFdr({
    ...BASE,
    out: dir,
    events: 60_000,
    days: 2,
    partEvents: 4000,
    batches: 3,
    seed: 'big',
  });
  assert.equal(s.events, 60_000);
  assert.ok(s.dataFiles >= 15, `parts: ${s.dataFiles}`);
  // One part (≤ partEvents background events plus the planted events falling into it) at a time.
  assert.ok(s.maxEventsInMemory <= 4000 + 600, `max in memory ${s.maxEventsInMemory}`);
  for (const p of s.paths.data) {
    for (const f of await readdir(path.join(dir, p))) assert.ok((await stat(path.join(dir, p, f))).size > 0);
  }
});

test('talon generate CLI writes the data and prints a JSON summary', async () => {
  const dir = path.join(root, 'cli');
  const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');
  const res = spawnSync(
    process.execPath,
    [
      cli,
      'generate',
      '--out',
      dir,
      '--events',
      '1200',
      '--hosts',
      '9',
      '--days',
      '2',
      '--seed',
      '7',
      '--batches',
      '3',
      '--format',
      'json',
    ],
    { encoding: 'utf8', env: { ...process.env, TALON_LOG: 'silent' } },
  );
  assert.equal(res.status, 0, res.stderr);
  const summary = JSON.parse(res.stdout) as GenerateSummary;
  assert.equal(summary.events, 1200);
  assert.equal(summary.batches, 3);
  assert.equal(summary.hosts, 9);
  assert.equal(summary.paths.data.length, 3);
  const gt = JSON.parse(await readFile(path.join(dir, 'ground-truth.json'), 'utf8')) as {
    generator: { seed: string; days: number };
  };
  assert.deepEqual([gt.generator.seed, gt.generator.days], ['7', 2]);
  const bad = spawnSync(
    process.execPath,
    [cli, 'generate', '--out', path.join(root, 'cli-bad'), '--events', '100', '--hosts', '3'],
    {
      encoding: 'utf8',
      env: { ...process.env, TALON_LOG: 'silent' },
    },
  );
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /hosts must be an integer ≥ 8/);
});

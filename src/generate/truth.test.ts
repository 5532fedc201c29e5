/**
 * Recomputes the three detections naively from the written files (raw events, iocs.csv, the ASN
 * CSV, the Public Suffix List) — independently of the generator's GroundTruth class — and checks
 * that ground-truth.json lists exactly those alerts, and that the scenarios and decoys it promises
 * are really in the data.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { gunzipSync } from 'node:zlib';
import { getDomain } from 'tldts';
import { defaultAsnCsvPath } from './asn.js';
import { generateFdr } from './index.js';

type Ev = Record<string, string>;

interface GroundTruthFile {
  parameters: {
    vulnerable_ports: number[];
    known_servers: string[];
    learning_period: { days: number; start: string; end: string };
    ioc_dedup_window_hours: number;
    ioc_mappings: Record<string, [string, string][]>;
  };
  counts: Record<string, number>;
  alerts: Record<string, string | number>[];
  decoys: Record<string, string | number>[];
  hosts: { aid: string; aip: string; known_server: string | null }[];
}

let root: string;

async function generate(
  name: string,
  opts: { seed: string; days: number; learningDays?: number; events?: number },
) {
  const dir = path.join(root, name);
  await generateFdr({
    out: dir,
    events: opts.events ?? 8000,
    hosts: 14,
    days: opts.days,
    seed: opts.seed,
    learningDays: opts.learningDays,
    progress: false,
  });
  const events: Ev[] = [];
  const dataDirs = await readdir(path.join(dir, 'data'));
  for (const d of dataDirs) {
    for (const f of await readdir(path.join(dir, 'data', d))) {
      const text = gunzipSync(await readFile(path.join(dir, 'data', d, f))).toString('utf8');
      for (const line of text.split('\n')) if (line) events.push(JSON.parse(line) as Ev);
    }
  }
  const gt = JSON.parse(await readFile(path.join(dir, 'ground-truth.json'), 'utf8')) as GroundTruthFile;
  const iocs = parseCsv(await readFile(path.join(dir, 'iocs.csv'), 'utf8'));
  return { dir, events, gt, iocs };
}

/** Minimal RFC 4180 reader, written here so the test does not share the generator's code. */
function parseCsv(text: string): Record<string, string>[] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  const [header, ...body] = rows;
  return body.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
}

function ipNum(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

function knownServer(ip: string, list: string[]): boolean {
  return list.some((entry) => {
    if (!entry.includes('/')) return entry === ip;
    const [base, bits] = entry.split('/');
    const size = 2 ** (32 - Number(bits));
    const net = Math.floor(ipNum(base) / size) * size;
    return ipNum(ip) >= net && ipNum(ip) < net + size;
  });
}

let asnRows: Promise<[lo: number, hi: number, org: string][]> | undefined;

/** as_org of each address, by a linear scan of the bundled ASN CSV (read once per test file). */
async function asOrgs(ips: Set<string>): Promise<Map<string, string>> {
  asnRows ??= (async () => {
    const rows: [number, number, string][] = [];
    const rl = createInterface({ input: createReadStream(defaultAsnCsvPath(), 'utf8'), crlfDelay: Infinity });
    for await (const line of rl) {
      const m = /^([\d.]+),([\d.]+),(\d+),(?:"((?:[^"]|"")*)"|(.*))$/.exec(line);
      if (m) rows.push([ipNum(m[1]), ipNum(m[2]), m[4] !== undefined ? m[4].replace(/""/g, '"') : m[5]]);
    }
    return rows;
  })();
  const rows = await asnRows;
  const out = new Map<string, string>();
  for (const ip of ips) {
    const n = ipNum(ip);
    const row = rows.find(([lo, hi]) => n >= lo && n <= hi);
    if (row) out.set(ip, row[2]);
  }
  return out;
}

interface Expected {
  key: string;
  event_time: string;
}

async function naiveDetections(
  events: Ev[],
  gt: GroundTruthFile,
  iocs: Record<string, string>[],
): Promise<Expected[]> {
  const p = gt.parameters;
  const sorted = events.slice().sort((a, b) => Number(a.timestamp) - Number(b.timestamp));
  const iso = (e: Ev): string => new Date(Number(e.timestamp)).toISOString();
  const out: Expected[] = [];
  // 1. vulnerable services
  for (const e of sorted) {
    if (e.event_simpleName !== 'NetworkListenIP4' && e.event_simpleName !== 'NetworkListenIP6') continue;
    if (!p.vulnerable_ports.includes(Number(e.LocalPort)) || knownServer(e.aip, p.known_servers)) continue;
    out.push({ key: `vulnerable_services|${e.aid}|${e.LocalPort}|${e.aip}`, event_time: iso(e) });
  }
  // 2. new logon location: (UserName, as_org) pairs first seen after the learning period.
  const logons = sorted.filter((e) => e.event_simpleName === 'UserLogon');
  const orgs = await asOrgs(new Set(logons.map((e) => e.aip)));
  const learningEnd = Date.parse(p.learning_period.end);
  const firstPerUser = new Map<string, number>();
  const seen = new Set<string>();
  for (const e of logons) {
    const org = orgs.get(e.aip);
    assert.ok(org, `aip ${e.aip} has an AS org in the bundled database`);
    if (!firstPerUser.has(e.UserName)) firstPerUser.set(e.UserName, Number(e.timestamp));
    const k = `${e.UserName}|${org}`;
    if (seen.has(k)) continue;
    seen.add(k);
    const afterGlobal = Number(e.timestamp) >= learningEnd;
    // A per-user learning period (first logon + learning days) must agree with the global one.
    const afterPerUser =
      Number(e.timestamp) >= firstPerUser.get(e.UserName)! + p.learning_period.days * 86400000;
    assert.equal(afterPerUser, afterGlobal, `learning-period interpretations disagree for ${k}`);
    if (afterGlobal)
      out.push({ key: `new_logon_location|${e.aid}|${e.UserName}|${org}`, event_time: iso(e) });
  }
  // 3. IoC matching: explode, dedup 24 h per (aid, ioc_type, ioc), join inside the validity window.
  const iocIndex = new Map(iocs.map((i) => [`${i.ioc_type}|${i.ioc}`, i]));
  const lastKept = new Map<string, number>();
  const windowMs = p.ioc_dedup_window_hours * 3600000;
  for (const e of sorted) {
    const mapping = p.ioc_mappings[e.event_simpleName];
    if (!mapping) continue;
    for (const [field, type] of mapping) {
      const value =
        field === 'DomainName_psl.registered_domain'
          ? (getDomain(e.DomainName ?? '') ?? '')
          : (e[field] ?? '');
      if (!value) continue;
      const dk = `${e.aid}|${type}|${value}`;
      const t = Number(e.timestamp);
      const prev = lastKept.get(dk);
      if (prev !== undefined && t - prev < windowMs) continue;
      lastKept.set(dk, t);
      const ioc = iocIndex.get(`${type}|${value}`);
      if (!ioc) continue;
      if (t < Date.parse(ioc.first_seen) || (ioc.last_seen !== '' && t > Date.parse(ioc.last_seen))) continue;
      out.push({ key: `ioc_match|${e.aid}|${type}|${value}`, event_time: iso(e) });
    }
  }
  return out;
}

function groundTruthKeys(gt: GroundTruthFile): Expected[] {
  return gt.alerts.map((a) => {
    const key =
      a.detection === 'vulnerable_services'
        ? `vulnerable_services|${a.aid}|${a.LocalPort}|${a.aip}`
        : a.detection === 'new_logon_location'
          ? `new_logon_location|${a.aid}|${a.user}|${a.network}`
          : `ioc_match|${a.aid}|${a.ioc_type}|${a.ioc}`;
    return { key, event_time: String(a.event_time) };
  });
}

const sortExpected = (x: Expected[]): Expected[] =>
  x.slice().sort((a, b) => a.key.localeCompare(b.key) || a.event_time.localeCompare(b.event_time));

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'talon-truth-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('ground-truth.json lists exactly the alerts a naive detector finds in the files', async () => {
  const { events, gt, iocs } = await generate('week', { seed: 'truth-1', days: 5 });
  const naive = await naiveDetections(events, gt, iocs);
  assert.deepEqual(sortExpected(groundTruthKeys(gt)), sortExpected(naive));
  assert.equal(
    gt.alerts.length,
    gt.counts.vulnerable_services + gt.counts.new_logon_location + gt.counts.ioc_match,
  );

  // Every scenario is represented.
  const by = (d: string) => gt.alerts.filter((a) => a.detection === d);
  assert.ok(by('vulnerable_services').length >= 5);
  assert.ok(by('new_logon_location').length >= 2);
  assert.ok(by('ioc_match').length >= 10);
  const iocTypes = new Set(by('ioc_match').map((a) => a.ioc_type));
  for (const t of ['FileHash-MD5', 'FileHash-SHA256', 'domain', 'hostname', 'IPv4'])
    assert.ok(iocTypes.has(t), t);
  const iocTables = new Set(by('ioc_match').map((a) => a.event_simpleName));
  for (const t of [
    'ProcessRollup2',
    'SyntheticProcessRollup2',
    'SuspiciousPeFileWritten',
    'DnsRequest',
    'NetworkConnectIP4',
    'NetworkReceiveAcceptIP4',
  ]) {
    assert.ok(iocTables.has(t), `an ioc_match from ${t}`);
  }
  // The second alert after > 24 h for the same (aid, ioc_type, ioc).
  const perKey = new Map<string, number>();
  for (const a of by('ioc_match'))
    perKey.set(`${a.aid}|${a.ioc_type}|${a.ioc}`, (perKey.get(`${a.aid}|${a.ioc_type}|${a.ioc}`) ?? 0) + 1);
  assert.ok(
    [...perKey.values()].some((n) => n === 2),
    'a key alerts twice, more than 24 h apart',
  );
  // Same IoC on different hosts → separate alerts.
  const aidsPerIoc = new Map<string, Set<string>>();
  for (const a of by('ioc_match')) {
    const k = `${a.ioc_type}|${a.ioc}`;
    if (!aidsPerIoc.has(k)) aidsPerIoc.set(k, new Set());
    aidsPerIoc.get(k)!.add(String(a.aid));
  }
  assert.ok([...aidsPerIoc.values()].some((s) => s.size >= 2));

  // Decoys: present in the data and not alerting.
  const byId = new Map(events.map((e) => [e.id, e]));
  const alertIds = new Set(gt.alerts.map((a) => String(a.event_id)));
  for (const d of gt.decoys) {
    assert.ok(byId.has(String(d.event_id)), `decoy event ${d.event_id} is in the data`);
    assert.ok(!alertIds.has(String(d.event_id)), `decoy ${d.reason} does not alert`);
  }
  const reasons = gt.decoys.map((d) => `${d.detection}: ${d.reason}`).join('\n');
  for (const r of [
    /known server \(exact IP\)/,
    /known server \(CIDR\)/,
    /not a vulnerable-service port/,
    /inside the learning period/,
    /known since the learning period/,
    /before the IoC's first_seen/,
    /after the IoC's last_seen/,
    /de-duplicated/,
  ]) {
    assert.match(reasons, r);
  }
  // Vulnerable ports are opened by known servers too (matched by exact IP and by CIDR).
  const knownHosts = gt.hosts.filter((h) => h.known_server);
  assert.deepEqual(knownHosts.map((h) => h.known_server).sort(), ['cidr', 'exact']);
  for (const h of knownHosts) {
    assert.ok(
      events.some(
        (e) =>
          e.aid === h.aid &&
          e.event_simpleName.startsWith('NetworkListen') &&
          gt.parameters.vulnerable_ports.includes(Number(e.LocalPort)),
      ),
    );
  }
  assert.ok(gt.parameters.known_servers.some((s) => s.includes('/')));
  // iocs.csv has entries never seen in the events.
  const allValues = new Set<string>();
  for (const e of events) for (const v of Object.values(e)) allValues.add(v);
  assert.ok(
    iocs.filter((i) => !allValues.has(i.ioc) && ![...allValues].some((v) => v.endsWith(`.${i.ioc}`)))
      .length >= 10,
  );
  // UserLogon aips come from several AS orgs, and every alerting network differs from the user's baseline.
  assert.ok(new Set(by('new_logon_location').map((a) => a.network)).size >= 2);
});

test('the learning period is a generator option: a longer one moves the attacks later', async () => {
  const { events, gt, iocs } = await generate('learn3', {
    seed: 'truth-2',
    days: 6,
    learningDays: 3,
    events: 5000,
  });
  assert.equal(gt.parameters.learning_period.days, 3);
  assert.equal(
    gt.parameters.learning_period.end,
    new Date(Date.parse(gt.parameters.learning_period.start) + 3 * 86400000).toISOString(),
  );
  const naive = await naiveDetections(events, gt, iocs);
  assert.deepEqual(sortExpected(groundTruthKeys(gt)), sortExpected(naive));
  const logonAlerts = gt.alerts.filter((a) => a.detection === 'new_logon_location');
  assert.ok(logonAlerts.length >= 2);
  for (const a of logonAlerts) assert.ok(String(a.event_time) >= gt.parameters.learning_period.end);
});

test('a short window still gives consistent ground truth (scenarios that do not fit are left out)', async () => {
  const { events, gt, iocs } = await generate('short', { seed: 'truth-3', days: 1, events: 3000 });
  const naive = await naiveDetections(events, gt, iocs);
  assert.deepEqual(sortExpected(groundTruthKeys(gt)), sortExpected(naive));
  assert.equal(gt.counts.new_logon_location, 0);
  assert.ok(gt.counts.vulnerable_services > 0 && gt.counts.ioc_match > 0);
});

/**
 * `npm run bench -- intel`: threat-intel costs (issue #5).
 *
 * (a) Load: N IoCs of mixed types (IPv4, domain, URL, MD5, SHA256) as a CSV feed, parsed,
 *     normalized and MERGEd into `iocs` + `ioc_sources`: IoCs/s over the whole load.
 * (c) Retro-hunt: E NetworkConnectIP4/DnsRequest-shaped events over 30 days (one partition
 *     per day), then K new IoCs (a few of them present in the events) loaded and hunted over
 *     the 30-day look-back: seconds for the retro-hunt query alone.
 * (b) Live matching: M FDR-shaped events (ProcessRollup2, DnsRequest, NetworkConnectIP4,
 *     NetworkListenIP4, UserLogon) through the live detections, once with no IoCs and once
 *     with L IoCs loaded (mixed: SHA256, MD5, domain, hostname, IPv4, IPv4-CIDR; a few hundred
 *     present in the events). Both lakes hold the same events (one is a copy of the other),
 *     appended as C commits per table and read one commit per micro-batch, as a long-running
 *     detector would. Reported apart: the cold first batch (the IoC index built from the
 *     `iocs` snapshot) and the steady state over the C − 1 later batches (the index kept),
 *     each as events per CPU second and per wall second, with the ratio with/without IoCs
 *     (CPU and wall), for the ioc_match query alone and for all live detections. The pair of
 *     runs is repeated R times (fresh copies of the lakes, alternating which run goes first):
 *     a 2-core machine is noisy, so the ratios are reported per run and as median and range.
 * Targets (2 cores): (a) ≥ 200,000 IoCs/s; (b) ratio ≥ 0.8; (c) < 30 s for K = 10,000,
 * E = 10,000,000.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Lake } from '../lake/lake.js';
import { Pipeline } from '../engine/pipeline.js';
import { detectSettings } from '../detections/detection.js';
import { retroHuntQuery } from '../detections/retrohunt.js';
import { parseFeed } from '../intel/feeds/index.js';
import { loadIocRecords } from '../intel/load.js';
import type { Benchmark } from './main.js';
import { detectionQueries, loadDetections } from '../detections/registry.js';
import { mergeIocs } from '../intel/iocs.js';

const HELP = `npm run bench -- intel [flags]
  --iocs N       IoCs for the load benchmark (default 1000000)
  --events E     historical events for the retro-hunt (default 10000000)
  --new K        new IoCs hunted (default 10000)
  --match-events M  events for the live-matching benchmark (default 1000000)
  --match-iocs L    IoCs loaded for it (default 1000000)
  --match-commits C commits per event table for it (default 10): batch 1 cold, C-1 steady
  --match-hits H    of every 2,000 IoCs loaded for it, H are values the events hold (default 20)
  --match-repeat R  run pairs (no IoCs, IoCs) for it, alternating which goes first; the
                    ratios are reported per run and as median and range (default 3)
  --only a,b,c   which parts run (default a,b,c)
  --dir DIR      work folder (default: a temp folder, removed after)
`;

const DAY = 86_400_000;

function hex(i: number, len: number): string {
  let s = '';
  let x = i + 1;
  while (s.length < len) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += x.toString(16).padStart(8, '0');
  }
  return s.slice(0, len);
}

function iocCsv(n: number, offset = 0): string {
  const lines = ['ioc,ioc_type'];
  for (let j = 0; j < n; j++) {
    const i = j + offset;
    switch (i % 5) {
      case 0:
        lines.push(`${10 + (i % 200)}.${(i >> 8) & 255}.${(i >> 16) & 255}.${i & 255},IPv4`);
        break;
      case 1:
        lines.push(`h${i}.evil${i % 1000}.example,domain`);
        break;
      case 2:
        lines.push(`http://u${i}.example/p/${i},URL`);
        break;
      case 3:
        lines.push(`${hex(i, 32)},FileHash-MD5`);
        break;
      default:
        lines.push(`${hex(i, 64)},FileHash-SHA256`);
    }
  }
  return lines.join('\n');
}

const T0 = Date.UTC(2026, 2, 2);

/** SQL for `n` FDR-shaped rows of a table (`i` the row number), over 3 days from T0. */
function matchEventsSql(table: string, from: number, n: number, total: number): string {
  const base = `FROM range(${from}, ${from + n}) r(i)`;
  const ts = `make_timestamp(${T0 * 1000} + CAST(i AS BIGINT) * ${Math.floor((3 * DAY * 1000) / Math.max(1, total))})`;
  const common = `'aid' || (i % 2000) AS aid, 'cid1' AS cid, '203.0.' || (i % 200) || '.' || (i % 250) AS aip,
    'id' || i AS id, ${ts} AS timestamp, CAST(${ts} AS DATE) AS event_date, '${table}' AS event_simpleName,
    {'as_number': CAST(64500 + i % 50 AS BIGINT), 'as_org': 'AS org ' || (i % 50), 'as_network': '203.0.0.0/16'} AS aip_as`;
  switch (table) {
    case 'ProcessRollup2':
      return `SELECT ${common}, md5('h' || (i % 300000)) || md5('x' || (i % 300000)) AS SHA256HashData,
        md5('h' || (i % 300000)) AS MD5HashData ${base}`;
    case 'DnsRequest':
      return `SELECT ${common}, 'host' || (i % 50000) || '.example' || (i % 100) || '.com' AS DomainName,
        {'registered_domain': 'example' || (i % 100) || '.com'} AS DomainName_psl,
        '198.51.' || (i % 256) || '.' || (i % 200) AS FirstIP4Record ${base}`;
    case 'NetworkConnectIP4':
      return `SELECT ${common}, '198.18.' || (i % 256) || '.' || (i % 250) AS RemoteAddressIP4 ${base}`;
    case 'NetworkListenIP4':
      return `SELECT ${common}, CAST(CASE WHEN i % 1000 = 0 THEN 3389 ELSE 8000 + i % 1000 END AS BIGINT) AS LocalPort ${base}`;
    default:
      return `SELECT ${common}, 'user' || (i % 3000) AS UserName ${base}`;
  }
}

const MATCH_MIX: [string, number][] = [
  ['ProcessRollup2', 0.4],
  ['DnsRequest', 0.25],
  ['NetworkConnectIP4', 0.25],
  ['NetworkListenIP4', 0.05],
  ['UserLogon', 0.05],
];

/**
 * L IoCs: `hits` in 2,000 (default 20, 1%) are values some events hold (hash, host name, a
 * domain of one host, IP, a /30 of the connection range), the rest unrelated values of the
 * same types. At the default about 400 of every 100,000 events match and alert; the cost of a
 * match (reading its event, dedup, alert) then weighs as much as the matching itself.
 */
function matchIocsSql(n: number, hits = 20): string {
  return `SELECT 'bench' AS dataset, ioc, ioc_type, 'i' || j AS ioc_id, TIMESTAMP '2026-01-01' AS first_seen,
      NULL::TIMESTAMP AS last_seen, 'bench' AS description
    FROM (SELECT j, CASE j % 20
        WHEN 0 THEN 'IPv4' WHEN 1 THEN 'IPv4' WHEN 2 THEN 'IPv4' WHEN 3 THEN 'hostname' WHEN 4 THEN 'IPv4-CIDR'
        WHEN 5 THEN 'domain' WHEN 6 THEN 'domain' WHEN 7 THEN 'domain'
        WHEN 8 THEN 'FileHash-MD5' WHEN 9 THEN 'FileHash-MD5' WHEN 10 THEN 'FileHash-MD5'
        ELSE 'FileHash-SHA256' END AS ioc_type, j % 2000 < ${hits} AS hit FROM range(${n}) r(j)) x,
    LATERAL (SELECT CASE ioc_type
        WHEN 'FileHash-SHA256' THEN CASE WHEN hit THEN md5('h' || j) || md5('x' || j) ELSE md5('s' || j) || md5('t' || j) END
        WHEN 'FileHash-MD5' THEN CASE WHEN hit THEN md5('h' || j) ELSE md5('m' || j) END
        WHEN 'domain' THEN CASE WHEN hit THEN 'host' || (j % 50000) || '.example' || (j % 100) || '.com' ELSE 'd' || j || '.bad' || (j % 97) || '.net' END
        WHEN 'hostname' THEN CASE WHEN hit THEN 'host' || ((j + 7) % 50000) || '.example' || ((j + 7) % 100) || '.com' ELSE 'h' || j || '.evil.org' END
        WHEN 'IPv4' THEN CASE WHEN hit THEN '198.51.' || (j % 256) || '.' || (j % 200)
          ELSE (11 + j % 180) || '.' || (j // 65536 % 256) || '.' || (j // 256 % 256) || '.' || (j % 256) END
        ELSE CASE WHEN hit THEN '198.18.' || (j % 256) || '.' || (j % 250 // 4 * 4) || '/30'
          ELSE (11 + j % 180) || '.' || (j // 256 % 256) || '.' || (j % 256) || '.0/24' END END AS ioc)`;
}

interface Phase {
  /** wall seconds */
  seconds: number;
  /** CPU seconds of the process (user + system, every DuckDB thread) */
  cpuSeconds: number;
  batches: number;
}

interface RunCost {
  /** the run over the first commit of every table (the IoC index is built there) */
  cold: Phase;
  /** the run over the later commits, same pipeline: the index of the same `iocs` version reused */
  steady: Phase;
  alerts: number;
}

/**
 * The live detections over a lake whose event tables hold the first commit, then the rest
 * appended (`appendRest`), read one Delta version per micro-batch (maxVersionsPerBatch 1) as a
 * long-running detector sees them. The cold phase is the run over the first commit (the IoC
 * index is built there); the steady phase the run over the later commits with the same
 * pipeline (index kept). Each phase is timed as a whole (wall and process CPU): the queries
 * of different lanes run concurrently, so per-batch intervals would not add up per phase.
 */
async function runLive(
  lakeDir: string,
  only: string[],
  appendRest: (lake: Lake) => Promise<void>,
): Promise<RunCost> {
  const lake = await Lake.open(lakeDir);
  try {
    const set = await loadDetections({}, { only, rulesDir: path.join(lakeDir, 'no-rules') });
    const pipeline = new Pipeline(lake, detectionQueries(set), {
      maxVersionsPerBatch: 1,
      maxRowsPerBatch: 10_000_000,
    });
    let alerts = 0;
    const timed = async (): Promise<Phase> => {
      const phase: Phase = { seconds: 0, cpuSeconds: 0, batches: 0 };
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await pipeline.runAvailableNow({
        onBatch(r) {
          phase.batches++;
          alerts += r.metrics['sink.alerts.rows'] ?? 0;
        },
      });
      const c = process.cpuUsage(c0);
      phase.seconds = (performance.now() - t0) / 1000;
      phase.cpuSeconds = (c.user + c.system) / 1e6;
      return phase;
    };
    const cold = await timed();
    await appendRest(lake);
    const steady = await timed();
    return { cold, steady, alerts };
  } finally {
    lake.close();
  }
}

/**
 * (b): the live detections over the same events, without IoCs and with L IoCs loaded. The
 * events go in as C commits per table; the first micro-batch (cold: the IoC index is built
 * from the `iocs` snapshot) and the C − 1 later ones (steady state: the index kept between
 * batches) are reported apart, each against the no-IoC run measured the same way.
 */
async function liveMatching(
  dir: string,
  nEvents: number,
  nIocs: number,
  commits: number,
  hits: number,
  repeats: number,
): Promise<void> {
  const base = path.join(dir, 'match-base');
  let t = performance.now();
  const lake = await Lake.open(base);
  // Events per commit (all tables): commit 0 is the cold batch, the rest the steady state,
  // appended to each run's lake after its cold phase (`appendRest`).
  const perCommit = new Array<number>(commits).fill(0);
  const later: { table: string; sql: string }[] = [];
  try {
    for (const [table, p] of MATCH_MIX) {
      const n = Math.max(commits, Math.round(nEvents * p));
      const tbl = await lake.createTable(table, { partitionColumns: ['event_date'] });
      const per = Math.ceil(n / commits);
      for (let k = 0, from = 0; from < n; k++, from += per) {
        const m = Math.min(per, n - from);
        if (k === 0) await tbl.append(matchEventsSql(table, from, m, n));
        else later.push({ table, sql: matchEventsSql(table, from, m, n) });
        perCommit[k] += m;
      }
    }
  } finally {
    lake.close();
  }
  const appendRest = async (l: Lake) => {
    for (const c of later) await (await l.table(c.table))!.append(c.sql);
  };
  const coldEvents = perCommit[0];
  const steadyEvents = perCommit.slice(1).reduce((a, b) => a + b, 0);
  const runs: [string, string[]][] = [
    ['ioc_match', ['ioc_match']],
    ['live detections', ['vulnerable_services', 'new_logon_location', 'ioc_match']],
  ];
  // Templates: the first commit of every table, without and with the IoCs; each run gets a
  // fresh copy (its steady-state commits are appended during the run).
  const templates = { none: base, loaded: path.join(dir, 'match-loaded-template') };
  await fs.cp(base, templates.loaded, { recursive: true });
  process.stdout.write(
    `(b) ${coldEvents + steadyEvents} events written as ${commits} commits per table in ${((performance.now() - t) / 1000).toFixed(1)} s\n`,
  );
  t = performance.now();
  const l = await Lake.open(templates.loaded);
  try {
    await mergeIocs(l, matchIocsSql(nIocs, hits));
  } finally {
    l.close();
  }
  process.stdout.write(
    `    ${nIocs} IoCs loaded (${hits} in 2,000 held by events) in ${((performance.now() - t) / 1000).toFixed(1)} s\n`,
  );
  const fmt = (p: Phase, events: number) =>
    `${Math.round(events / p.seconds)} events/s, ${Math.round(events / p.cpuSeconds)} events/CPU-s ` +
    `(wall ${p.seconds.toFixed(2)} s, CPU ${p.cpuSeconds.toFixed(2)} s, ${p.batches} batches)`;
  const ratios = (pairs: [Phase, Phase][]) => {
    const med = (xs: number[]) => {
      const v = [...xs].sort((a, b) => a - b);
      return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    };
    const one = (xs: number[]) =>
      xs.length === 1
        ? xs[0].toFixed(2)
        : `${med(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
    return (
      `ratio ${one(pairs.map(([n, w]) => n.seconds / w.seconds))} wall, ` +
      `${one(pairs.map(([n, w]) => n.cpuSeconds / w.cpuSeconds))} CPU` +
      (pairs.length > 1 ? ` — median (range) of ${pairs.length} runs` : '')
    );
  };
  let seq = 0;
  for (const [label, only] of runs) {
    const cold: [Phase, Phase][] = [];
    const steady: [Phase, Phase][] = [];
    const lines: string[] = [];
    let alerts = '';
    for (let r = 0; r < repeats; r++) {
      // Alternating which goes first cancels a drift of the machine (and page-cache warmth)
      // between the two runs of a pair.
      const order: ('none' | 'loaded')[] = r % 2 === 0 ? ['none', 'loaded'] : ['loaded', 'none'];
      const got: Partial<Record<'none' | 'loaded', RunCost>> = {};
      for (const k of order) {
        const lakeDir = path.join(dir, `match-run-${++seq}`);
        await fs.cp(templates[k], lakeDir, { recursive: true });
        try {
          got[k] = await runLive(lakeDir, only, appendRest);
        } finally {
          await fs.rm(lakeDir, { recursive: true, force: true });
        }
      }
      const none = got.none!;
      const loaded = got.loaded!;
      cold.push([none.cold, loaded.cold]);
      steady.push([none.steady, loaded.steady]);
      alerts = `${none.alerts} without IoCs, ${loaded.alerts} with`;
      lines.push(
        `      run ${r + 1}: no IoCs   ${fmt(none.steady, steadyEvents)}\n` +
          `             ${nIocs} IoCs ${fmt(loaded.steady, steadyEvents)}\n` +
          `             ${ratios([[none.steady, loaded.steady]])}\n`,
      );
    }
    process.stdout.write(
      `(b) ${label}, cold first batch (${coldEvents} events, IoC index built from the snapshot):\n` +
        `      no IoCs   ${fmt(cold[0][0], coldEvents)}\n` +
        `      ${nIocs} IoCs ${fmt(cold[0][1], coldEvents)}\n` +
        `      ${ratios(cold)}\n` +
        `(b) ${label}, steady state (${steadyEvents} events in ${commits - 1} commits per table, one batch each, IoC index reused):\n` +
        lines.join('') +
        `      ${ratios(steady)} (target ≥ 0.8)\n` +
        `      alerts: ${alerts}\n`,
    );
  }
}

export const benchmark: Benchmark = {
  description:
    'threat intel: IoC load rate, live matching with 1M IoCs vs none, retro-hunt time over 30 days of events',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        iocs: { type: 'string', default: '1000000' },
        events: { type: 'string', default: '10000000' },
        new: { type: 'string', default: '10000' },
        'match-events': { type: 'string', default: '1000000' },
        'match-iocs': { type: 'string', default: '1000000' },
        'match-commits': { type: 'string', default: '10' },
        'match-hits': { type: 'string', default: '20' },
        'match-repeat': { type: 'string', default: '3' },
        only: { type: 'string', default: 'a,b,c' },
        dir: { type: 'string' },
        help: { type: 'boolean' },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return;
    }
    const nIocs = Number(values.iocs);
    const nEvents = Number(values.events);
    const nNew = Number(values.new);
    const dir = values.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'talon-bench-intel-')));
    const parts = new Set(values.only.split(','));
    if (parts.has('b'))
      await liveMatching(
        dir,
        Number(values['match-events']),
        Number(values['match-iocs']),
        Math.max(2, Number(values['match-commits'])),
        Math.min(2000, Math.max(0, Number(values['match-hits']))),
        Math.max(1, Number(values['match-repeat'])),
      );
    if (!parts.has('a') && !parts.has('c')) {
      if (!values.dir) await fs.rm(dir, { recursive: true, force: true });
      return;
    }
    const lake = await Lake.open(path.join(dir, 'lake'));
    try {
      // (a) load
      const text = iocCsv(nIocs);
      let t = performance.now();
      const parsed = parseFeed('csv', text, { dataset: 'bench' });
      const tParse = performance.now() - t;
      const rep = await loadIocRecords(lake, parsed, { format: 'csv', dataset: 'bench', loadId: 'bench-a' });
      const tLoad = performance.now() - t;
      process.stdout.write(
        `(a) load ${nIocs} IoCs: ${rep.stored} stored in ${(tLoad / 1000).toFixed(2)} s ` +
          `(parse+normalize ${(tParse / 1000).toFixed(2)} s) → ${Math.round(nIocs / (tLoad / 1000))} IoCs/s (target ≥ 200000)\n`,
      );
      // (c) retro-hunt. Its checkpoint first moves past the (a) load (no events yet, so that
      // run is cheap): only the K new IoCs below are hunted in the timed run.
      const q = retroHuntQuery(detectSettings(), { lookbackMs: 30 * DAY });
      await new Pipeline(lake, [q]).runAvailableNow();
      // Events over 30 days, one commit per day (partition).
      const now = Date.now();
      const table = await lake.createTable('networkconnectip4', { partitionColumns: ['event_date'] });
      const perDay = Math.ceil(nEvents / 30);
      t = performance.now();
      for (let d = 0; d < 30; d++) {
        const dayStart = now - (d + 1) * DAY;
        await table.append(`SELECT 'NetworkConnectIP4' AS event_simpleName,
            make_timestamp(CAST((${dayStart} + (i * 997) % ${DAY}) * 1000 AS BIGINT)) AS timestamp,
            CAST(i AS VARCHAR) AS id, 'aid' || CAST(i % 5000 AS VARCHAR) AS aid, 'c1' AS cid, '192.0.2.1' AS aip,
            CAST(100 + (i % 100) AS VARCHAR) || '.' || CAST((i // 100) % 256 AS VARCHAR) || '.' ||
              CAST((i // 25600) % 256 AS VARCHAR) || '.' || CAST(${d} AS VARCHAR) AS RemoteAddressIP4,
            CAST(make_timestamp(CAST(${dayStart} * 1000 AS BIGINT)) AS DATE) AS event_date
          FROM range(${perDay}) r(i)`);
      }
      process.stdout.write(
        `    ${perDay * 30} events over 30 days written in ${((performance.now() - t) / 1000).toFixed(1)} s\n`,
      );
      // K new IoCs: 20 present in the events (day 3), the rest not.
      const lines = ['ioc,ioc_type'];
      for (let j = 0; j < 20; j++) lines.push(`${100 + j}.${j}.0.3,IPv4`);
      for (let j = 20; j < nNew; j++) lines.push(`${hex(j + 10_000_000, 64)},FileHash-SHA256`);
      await loadIocRecords(lake, parseFeed('csv', lines.join('\n'), { dataset: 'new' }), {
        format: 'csv',
        dataset: 'new',
        loadId: 'bench-c',
      });
      t = performance.now();
      const reports = await new Pipeline(lake, [q]).runAvailableNow();
      const tHunt = (performance.now() - t) / 1000;
      const hunted = reports.reduce((a, r) => a + (r.metrics.retrohunt_new_iocs ?? 0), 0);
      process.stdout.write(
        `(c) retro-hunt of ${hunted} new IoCs against ${perDay * 30} events: ${tHunt.toFixed(2)} s (target < 30 s)\n`,
      );
    } finally {
      lake.close();
      if (!values.dir) await fs.rm(dir, { recursive: true, force: true });
    }
  },
};

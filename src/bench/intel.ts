/**
 * `npm run bench -- intel`: threat-intel costs (issue #5).
 *
 * (a) Load: N IoCs of mixed types (IPv4, domain, URL, MD5, SHA256) as a CSV feed, parsed,
 *     normalized and MERGEd into `iocs` + `ioc_sources`: IoCs/s over the whole load.
 * (c) Retro-hunt: E NetworkConnectIP4/DnsRequest-shaped events over 30 days (one partition
 *     per day), then K new IoCs (a few of them present in the events) loaded and hunted over
 *     the 30-day look-back: seconds for the retro-hunt query alone.
 * Targets (2 cores): (a) ≥ 200,000 IoCs/s; (c) < 30 s for K = 10,000, E = 10,000,000.
 * (b) live matching with 1M IoCs is the detect bench with --iocs 1000000.
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

const HELP = `npm run bench -- intel [flags]
  --iocs N       IoCs for the load benchmark (default 1000000)
  --events E     historical events for the retro-hunt (default 10000000)
  --new K        new IoCs hunted (default 10000)
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

export const benchmark: Benchmark = {
  description: 'threat intel: IoC load rate, retro-hunt time over 30 days of events',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        iocs: { type: 'string', default: '1000000' },
        events: { type: 'string', default: '10000000' },
        new: { type: 'string', default: '10000' },
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

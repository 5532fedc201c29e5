/**
 * `talon demo`: the whole pipeline on the embedded default, end to end, on generated data —
 * generate FDR batches (with planted attacks) → ingest into the lake → load the IoC list →
 * run the detections → list the alerts — and check them against the generator's ground truth,
 * so a first-time user sees in one command both what Talon does and that it does it right.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateFdr } from '../generate/index.js';
import type { Lake } from '../lake/lake.js';
import { ingest, type IngestSummary } from '../ingest/pipeline.js';
import { FilesSource } from '../sources/files.js';
import { csvIocsRelation } from '../intel/csv.js';
import { mergeIocs } from '../intel/iocs.js';
import { loadDetections, detectionQueries } from '../detections/registry.js';
import { Pipeline } from '../engine/pipeline.js';
import { listAlerts, type Alert } from '../alerts/alerts.js';
import type { TalonConfig } from '../config/config.js';
import type { Logger } from '../log.js';
import { runNotifier } from '../notify/notifier.js';
import { notifySchema } from '../notify/settings.js';

export interface DemoOptions {
  /** Where the generated FDR data goes (replaced on each run). */
  dataDir: string;
  events: number;
  hosts: number;
  days: number;
  seed: string;
  /** Detection settings from the config; known servers and learning period come from the data. */
  detect: TalonConfig['detect'];
  /** Notification settings; with no destinations the alerts go to stdout (or a file, below). */
  notify: TalonConfig['notify'];
  /** With no destinations configured: NDJSON to stdout (true) or to <dataDir>/alerts.ndjson. */
  notifyStdout?: boolean;
  logger: Logger;
}

export interface DemoResult {
  dataDir: string;
  generated: { events: number; files: number; batches: number };
  ingested: IngestSummary;
  iocs: number;
  alerts: Alert[];
  /** Where the notifier delivered the alerts, and how many messages went out. */
  notified: { destinations: string[]; sent: number };
  /** Per detection: alerts expected by the generator's ground truth vs raised. */
  check: Record<string, { expected: number; raised: number }>;
}

interface GroundTruth {
  parameters: {
    known_servers: string[];
    learning_period: { days: number };
    vulnerable_ports: number[];
  };
  alerts: { detection: string }[];
}

export async function runDemo(lake: Lake, opts: DemoOptions): Promise<DemoResult> {
  const log = opts.logger;
  // A second run with the same arguments reuses the data it generated before: regenerated files
  // would be new files to the ingest log (new mtimes), i.e. the same events ingested twice.
  const stampFile = path.join(opts.dataDir, '.talon-demo.json');
  const stamp = JSON.stringify({ events: opts.events, hosts: opts.hosts, days: opts.days, seed: opts.seed });
  let gen: DemoResult['generated'];
  const previous = await readFile(stampFile, 'utf8').catch(() => undefined);
  if (previous && JSON.parse(previous).stamp === stamp) {
    gen = JSON.parse(previous).generated as DemoResult['generated'];
    log.info('demo: reusing generated FDR data', { out: opts.dataDir });
  } else {
    log.info('demo: generating FDR data', { out: opts.dataDir, events: opts.events });
    const g = await generateFdr({
      out: opts.dataDir,
      events: opts.events,
      hosts: opts.hosts,
      days: opts.days,
      seed: opts.seed,
      force: true,
    });
    gen = { events: g.events, files: g.files, batches: g.batches };
    await writeFile(stampFile, JSON.stringify({ stamp, generated: gen }));
  }
  const truth = JSON.parse(
    await readFile(path.join(opts.dataDir, 'ground-truth.json'), 'utf8'),
  ) as GroundTruth;

  log.info('demo: ingesting', { lake: lake.location });
  const ingested = await ingest(lake, new FilesSource([opts.dataDir], { warn: (m, f) => log.warn(m, f) }));

  log.info('demo: loading IoCs', { file: 'iocs.csv' });
  const iocFile = path.join(opts.dataDir, 'iocs.csv');
  const rel = await csvIocsRelation(lake.db, iocFile, { dataset: 'demo' });
  const [{ n }] = await lake.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM (${rel})`);
  await mergeIocs(lake, rel, `demo:${opts.seed}`);

  // The generated estate has its own approved servers and starts on the generator's first day:
  // take those from its ground truth, everything else from the user's configuration.
  const detect: TalonConfig['detect'] = {
    ...opts.detect,
    known_servers: [...new Set([...opts.detect.known_servers, ...truth.parameters.known_servers])],
    vulnerable_ports: truth.parameters.vulnerable_ports,
    learning_period: `${truth.parameters.learning_period.days}d`,
    // The ground truth follows the seed's live IoC matching (event time within the IoC's
    // validity, with decoys before first_seen); the retro-hunt deliberately looks before it.
    disabled: [...new Set([...opts.detect.disabled, 'ioc_retrohunt'])],
  };
  log.info('demo: running detections (available-now)');
  const set = await loadDetections(detect);
  const pipeline = new Pipeline(lake, detectionQueries(set), {
    maxVersionsPerBatch: detect.max_versions_per_batch,
    maxRowsPerBatch: detect.max_rows_per_batch,
    retainBatches: detect.checkpoint_retain_batches,
    autoCompactFiles: detect.auto_compact_files,
  });
  await pipeline.runAvailableNow();

  // Deliver through the real notifier (checkpointed, recorded in `deliveries`): to the
  // configured destinations, or to an NDJSON file when none are configured.
  const notify =
    opts.notify.destinations.length > 0
      ? opts.notify
      : notifySchema.parse({
          destinations: [
            opts.notifyStdout
              ? { name: 'stdout', type: 'file', path: '-' }
              : { name: 'demo-file', type: 'file', path: path.join(opts.dataDir, 'alerts.ndjson') },
          ],
        });
  let sent = 0;
  await runNotifier(
    lake,
    notify,
    { kind: 'available-now' },
    {
      onBatch: (r) => (sent += r.metrics['notify.sent'] ?? 0),
      log: (m, f) => log.info(m, f),
    },
  );
  const notified = {
    destinations: notify.destinations.map((d) =>
      d.type === 'file' && d.path !== '-' ? `${d.name} (${d.path})` : d.name,
    ),
    sent,
  };

  const alerts = await listAlerts(lake);
  const check: DemoResult['check'] = {};
  for (const a of truth.alerts) (check[a.detection] ??= { expected: 0, raised: 0 }).expected++;
  for (const a of alerts) (check[a.detection] ??= { expected: 0, raised: 0 }).raised++;
  return {
    dataDir: opts.dataDir,
    generated: gen,
    ingested,
    iocs: Number(n),
    alerts,
    notified,
    check,
  };
}

/**
 * `talon run`: the long-running service a team deploys — the configured ingest sources
 * (folder watch, FDR S3+SQS), every enabled detection and the notifier, as continuous
 * queries in one process.
 *
 * Each part is supervised on its own: a part that fails is logged and restarted with
 * exponential backoff while the others keep going; its unfinished work is replayed from its
 * checkpoint (ingest: the ingest log and Delta txn; detections and notifier: the engine's
 * offsets/commits), so a restart — of a part or of the process — loses and duplicates nothing.
 * Abort (SIGTERM/SIGINT in the CLI) lets every part finish its batch in flight and commit.
 *
 * Ingest and the detection pipeline each get their own Lake (own DuckDB instance): they run
 * concurrently and meet only through Delta commits, exactly as separate processes would.
 */
import { Lake } from '../lake/lake.js';
import { ingest } from '../ingest/pipeline.js';
import { Enricher, enrichOptionsFromConfig } from '../enrich/index.js';
import { WatchSource, watchOptionsFromConfig } from '../sources/watch.js';
import { SqsSource, sqsOptionsFromConfig } from '../sources/sqs.js';
import type { FdrSource } from '../sources/source.js';
import { loadDetections, detectionQueries } from '../detections/registry.js';
import { Pipeline } from '../engine/pipeline.js';
import { parseTrigger } from '../engine/trigger.js';
import { Notifier } from '../notify/notifier.js';
import type { TalonConfig } from '../config/config.js';
import type { Logger } from '../log.js';
import { sleep } from '../util/sleep.js';
import { parseDuration } from '../engine/duration.js';
import { maintainLake } from '../lake/maintenance.js';

export interface RunServiceOptions {
  /** Lake location (folder or s3://). */
  lake: string;
  config: TalonConfig;
  signal: AbortSignal;
  log: Logger;
  /** Detection/notifier trigger; default `continuous`. */
  trigger?: string;
  /** First restart delay of a failed part; doubles up to 60 s. Default 1000 ms. */
  restartDelayMs?: number;
}

export interface ServicePart {
  name: string;
  run(signal: AbortSignal): Promise<void>;
}

/** The parts the configuration asks for: one per ingest source, one for detect + notify. */
export function serviceParts(opts: RunServiceOptions): ServicePart[] {
  const { config, log } = opts;
  const parts: ServicePart[] = [];
  const ingestPart = (name: string, makeSource: () => FdrSource): ServicePart => ({
    name,
    async run(signal) {
      const lake = await Lake.open(opts.lake);
      const enricher = await Enricher.open(enrichOptionsFromConfig(config.enrich));
      const source = makeSource();
      try {
        await ingest(lake, source, {
          maxLineBytes: config.ingest.max_line_bytes,
          quarantineRawBytes: config.ingest.quarantine_raw_bytes,
          batchEvents: config.ingest.batch_events,
          parquetCodec: config.ingest.parquet_codec,
          enricher,
          signal,
          progress: false,
          onCommit: (g) =>
            log.info('ingest committed', {
              part: name,
              files: g.files.length,
              events: g.events,
              quarantined: g.quarantined,
            }),
        });
      } finally {
        await source.close?.();
        enricher.close();
        lake.close();
      }
    },
  });
  if (config.ingest.watch.paths.length > 0)
    parts.push(
      ingestPart('ingest:watch', () => new WatchSource(watchOptionsFromConfig(config.ingest.watch))),
    );
  if (config.ingest.sqs.queue_url)
    parts.push(ingestPart('ingest:sqs', () => new SqsSource(sqsOptionsFromConfig(config.ingest.sqs))));

  parts.push({
    name: 'detect',
    async run(signal) {
      const lake = await Lake.open(opts.lake);
      const set = await loadDetections(config.detect);
      const queries = detectionQueries(set);
      const notifier =
        config.notify.destinations.length > 0
          ? new Notifier(lake, config.notify, { signal, log: (m, f) => log.info(m, f) })
          : undefined;
      if (notifier) queries.push(notifier.query());
      // Grouped digests of a closed window go out on a timer too: batches only run when data changes.
      const stopFlush = new AbortController();
      const stop = () => stopFlush.abort();
      signal.addEventListener('abort', stop, { once: true });
      const flushing = notifier?.flushOnTimer(stopFlush.signal, (err) =>
        log.error('notify digest flush failed; retrying', { error: String(err) }),
      );
      try {
        const pipeline = new Pipeline(lake, queries, {
          maxVersionsPerBatch: config.detect.max_versions_per_batch,
          maxRowsPerBatch: config.detect.max_rows_per_batch,
          retainBatches: config.detect.checkpoint_retain_batches,
          autoCompactFiles: config.detect.auto_compact_files,
          log: (m) => log.debug(m),
        });
        await pipeline.run(parseTrigger(opts.trigger ?? 'continuous', config.detect.poll_ms), {
          signal,
          onBatch: (r) =>
            log.info('batch', {
              query: r.queryId,
              batch: r.batchId,
              replayed: r.replayed,
              ms: r.ms,
              ...r.metrics,
            }),
          // A failing query is retried by the pipeline after a pause; the others keep running.
          onError: (q, err) => log.error('query failed; retrying', { query: q, error: String(err) }),
        });
      } finally {
        stopFlush.abort();
        signal.removeEventListener('abort', stop);
        await flushing;
        await notifier?.close();
        lake.close();
      }
    },
  });
  const upkeep = config.maintenance;
  const everyMs = parseDuration(upkeep.interval);
  if (everyMs > 0 && (upkeep.optimize || upkeep.vacuum))
    parts.push({
      name: 'maintenance',
      async run(signal) {
        let wait = parseDuration(upkeep.first_after);
        for (;;) {
          await sleep(wait, signal);
          if (signal.aborted) return;
          // A lake (and DuckDB instance) per round: nothing is held between rounds a day apart.
          const lake = await Lake.open(opts.lake);
          try {
            const t0 = Date.now();
            const done = await maintainLake(lake, {
              optimize: upkeep.optimize,
              vacuum: upkeep.vacuum,
              targetFileSize: upkeep.target_file_size,
              onTable: (r) => {
                if (r.error) log.warn('maintenance: table left for the next round', { ...r });
              },
            });
            log.info('maintenance round', {
              tables: done.length,
              compacted_files: done.reduce((n, r) => n + r.compactedFiles, 0),
              vacuumed_files: done.reduce((n, r) => n + r.vacuumedFiles, 0),
              failed: done.filter((r) => r.error).length,
              ms: Date.now() - t0,
            });
          } finally {
            lake.close();
          }
          wait = everyMs;
        }
      },
    });
  return parts;
}

/** Runs the parts until `signal` aborts, restarting a failed part with backoff. */
export async function supervise(
  parts: ServicePart[],
  opts: Pick<RunServiceOptions, 'signal' | 'log' | 'restartDelayMs'>,
): Promise<void> {
  const { signal, log } = opts;
  const first = opts.restartDelayMs ?? 1000;
  await Promise.all(
    parts.map(async (part) => {
      let delay = first;
      while (!signal.aborted) {
        const started = Date.now();
        try {
          log.info('part started', { part: part.name });
          await part.run(signal);
          if (signal.aborted) break;
          log.warn('part ended by itself; restarting', { part: part.name });
        } catch (err) {
          if (signal.aborted) break;
          log.error('part failed; restarting', { part: part.name, error: String(err), delay_ms: delay });
        }
        // A part that ran a good while before failing starts over with a short delay.
        if (Date.now() - started > 60_000) delay = first;
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 60_000);
      }
      log.info('part stopped', { part: part.name });
    }),
  );
}

export async function runService(opts: RunServiceOptions): Promise<void> {
  const parts = serviceParts(opts);
  opts.log.info('talon run', { lake: opts.lake, parts: parts.map((p) => p.name) });
  await supervise(parts, opts);
}

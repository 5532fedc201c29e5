/**
 * `talon ingest PATH... | - [--watch] [--sqs-queue URL] [--lake DIR] [--format json]`
 */
import type { Command } from 'commander';
import type { TalonConfig } from '../config/config.js';
import type { IngestSummary } from '../ingest/pipeline.js';
import { log } from '../log.js';
import type { FdrSource } from '../sources/source.js';
import { formatOption, numberOption, out, UsageError, withLake, type Opts } from './common.js';

export function registerIngestCommand(program: Command): void {
  const cmd = program
    .command('ingest')
    .description(
      'ingest FDR data (files, folders recursively, gzip or NDJSON; "-" for stdin) into the lake: ' +
        'one table per event_simpleName, typed, enriched; bad input goes to the quarantine table',
    )
    .argument('[paths...]', 'files or folders (FDR layout data/<batch>/part-*.gz, fdrv2/...), or - for stdin')
    .option('--watch', 'keep running and ingest files as they appear under PATHs (or ingest.watch.paths)')
    .option(
      '--sqs-queue [url]',
      'ingest from the FDR SQS queue, deleting messages after commit (URL default: ingest.sqs.queue_url)',
    )
    .option('--batch-events <n>', 'events per commit group (config ingest.batch_events)')
    .option('--max-line-bytes <n>', 'longer lines go to quarantine (config ingest.max_line_bytes)')
    .option('--no-enrich', 'skip GeoIP/ASN/PSL enrichment');
  formatOption(cmd, ['table', 'json'] as const);
  withLake(
    cmd,
    async (ctx, paths: string[]) => {
      const opts = ctx.opts;
      const cfg = ctx.config.ingest;
      const { enrichOptionsFromConfig, Enricher } = await import('../enrich/index.js');
      const { ingest } = await import('../ingest/pipeline.js');
      const source = await sourceFor(paths ?? [], opts, ctx.config);
      const controller = new AbortController();
      const stop = (): void => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const enricher =
        opts.enrich === false ? null : await Enricher.open(enrichOptionsFromConfig(ctx.config.enrich));
      let summary: IngestSummary;
      try {
        summary = await ingest(ctx.lake, source, {
          maxLineBytes: cfg.max_line_bytes,
          quarantineRawBytes: cfg.quarantine_raw_bytes,
          batchEvents: cfg.batch_events,
          parquetCodec: cfg.parquet_codec,
          enricher,
          signal: controller.signal,
          onCommit: (g) => {
            if (opts.watch || opts.sqsQueue) {
              log.info('committed', { files: g.files.length, events: g.events, quarantined: g.quarantined });
            }
          },
        });
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        await source.close?.();
        enricher?.close();
      }
      printSummary(opts.format, summary);
    },
    (o: Opts) => ({
      'ingest.batch_events': numberOption('--batch-events', o.batchEvents),
      'ingest.max_line_bytes': numberOption('--max-line-bytes', o.maxLineBytes),
    }),
  );
}

async function sourceFor(paths: string[], opts: Opts, config: TalonConfig): Promise<FdrSource> {
  if (opts.sqsQueue) {
    if (paths.length) throw new UsageError('ingest: give either PATHs or --sqs-queue, not both');
    const queueUrl = typeof opts.sqsQueue === 'string' ? opts.sqsQueue : undefined;
    if (!queueUrl && !config.ingest.sqs.queue_url)
      throw new UsageError('ingest: --sqs-queue needs a URL (or ingest.sqs.queue_url in the config)');
    const { SqsSource, sqsOptionsFromConfig } = await import('../sources/sqs.js');
    return new SqsSource(sqsOptionsFromConfig(config.ingest.sqs, { queueUrl }));
  }
  if (opts.watch) {
    if (paths.includes('-')) throw new UsageError('ingest: --watch cannot read stdin');
    const { WatchSource, watchOptionsFromConfig } = await import('../sources/watch.js');
    return new WatchSource(watchOptionsFromConfig(config.ingest.watch, { paths }));
  }
  if (paths.length === 0) throw new UsageError('ingest: give PATHs, - for stdin, --watch or --sqs-queue');
  if (paths.includes('-')) {
    if (paths.length > 1) throw new UsageError('ingest: "-" (stdin) cannot be combined with PATHs');
    const { StdinSource } = await import('../sources/stdin.js');
    return new StdinSource();
  }
  const { FilesSource } = await import('../sources/files.js');
  return new FilesSource(paths, { warn: (msg, fields) => log.warn(msg, fields) });
}

function printSummary(format: unknown, s: IngestSummary): void {
  const json = {
    files: s.files,
    events: s.events,
    quarantined: s.quarantined,
    bytes: s.bytes,
    seconds: Math.round(s.seconds * 1000) / 1000,
    tables: s.tables,
  };
  if (format === 'json') {
    out(JSON.stringify(json) + '\n');
    return;
  }
  const lines = [
    `ingested ${s.events.toLocaleString('en-US')} events from ${s.files} files ` +
      `(${(s.bytes / 1e6).toFixed(1)} MB) in ${s.seconds.toFixed(1)} s` +
      (s.seconds > 0 ? `, ${Math.round(s.events / s.seconds).toLocaleString('en-US')} events/s` : ''),
    `quarantined ${s.quarantined}${s.skippedFiles ? `, skipped ${s.skippedFiles} files already ingested` : ''}`,
  ];
  const names = Object.keys(s.tables).sort((a, b) => s.tables[b] - s.tables[a] || a.localeCompare(b));
  const width = Math.max(0, ...names.map((n) => n.length));
  for (const n of names) lines.push(`  ${n.padEnd(width)}  ${s.tables[n].toLocaleString('en-US')}`);
  out(lines.join('\n') + '\n');
}

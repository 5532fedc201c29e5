/**
 * `talon detect`: runs the detections (built-ins + rule files) as checkpointed streaming
 * queries over the lake.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { UsageError, out, withLake } from './common.js';
import { parseTrigger } from '../engine/trigger.js';
import type { BatchReport } from '../engine/query.js';
import { log } from '../log.js';
import type { Notifier } from '../notify/notifier.js';

export function registerDetectCommand(program: Command): void {
  withLake(
    program
      .command('detect')
      .description('run the detections incrementally over new data (checkpointed, exactly-once alerts)')
      .option('--trigger <trigger>', 'available-now | continuous | interval:30s', 'available-now')
      .option('--detection <id...>', 'run only these detections')
      .option('--rules <dir>', 'folder of rule files (default: detect.rules_dir, ./rules)')
      .option('--notify', 'also deliver new alerts to notify.destinations in the same run')
      .addOption(new Option('--format <format>', 'summary format').choices(['text', 'json']).default('text')),
    async ({ lake, config, opts }) => {
      let trigger;
      try {
        trigger = parseTrigger(String(opts.trigger), config.detect.poll_ms);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      const { loadDetections, detectionQueries } = await import('../detections/registry.js');
      const { Pipeline } = await import('../engine/pipeline.js');
      const set = await loadDetections(config.detect, {
        only: opts.detection as string[] | undefined,
        rulesDir: opts.rules as string | undefined,
      }).catch((e: Error) => {
        throw /unknown detection/.test(e.message) ? new UsageError(e.message) : e;
      });
      const ac = new AbortController();
      // The notifier runs as one more query after the detections: the pipeline repeats its
      // round until no query has work, so alerts raised in a round are delivered in it.
      let notifier: Notifier | undefined;
      if (opts.notify) {
        if (config.notify.destinations.length === 0)
          throw new UsageError(
            'detect --notify: no destinations configured (notify.destinations in talon.yaml)',
          );
        const { Notifier } = await import('../notify/notifier.js');
        notifier = new Notifier(lake, config.notify, {
          signal: ac.signal,
          log: (msg, fields) => log.info(msg, fields),
        });
      }
      const queries = detectionQueries(set);
      if (notifier) queries.push(notifier.query());
      const pipeline = new Pipeline(lake, queries, {
        maxVersionsPerBatch: config.detect.max_versions_per_batch,
        maxRowsPerBatch: config.detect.max_rows_per_batch,
        retainBatches: config.detect.checkpoint_retain_batches,
        autoCompactFiles: config.detect.auto_compact_files,
        log: (m) => log.info(m),
      });
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const totals = new Map<string, { batches: number; alerts: number; rows: number }>();
      const onBatch = (r: BatchReport) => {
        const t = totals.get(r.queryId) ?? { batches: 0, alerts: 0, rows: 0 };
        t.batches++;
        t.alerts += r.metrics['sink.alerts.rows'] ?? 0;
        t.rows += Object.entries(r.metrics)
          .filter(([k]) => k.startsWith('rows.'))
          .reduce((a, [, v]) => a + v, 0);
        totals.set(r.queryId, t);
        log.info('batch', {
          query: r.queryId,
          batch: r.batchId,
          replayed: r.replayed,
          ms: r.ms,
          ...r.metrics,
        });
      };
      try {
        await pipeline.run(trigger, {
          signal: ac.signal,
          onBatch,
          onError: (q, err) => log.error('query failed; retrying', { query: q, error: String(err) }),
        });
        // available-now ends caught up: grouped digests still held for an open window go out now.
        if (notifier && trigger.kind === 'available-now' && !ac.signal.aborted)
          await notifier.flushPending(true);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        await notifier?.close();
      }
      const summary = [...totals.entries()].map(([query, t]) => ({ query, ...t }));
      if (opts.format === 'json')
        out(JSON.stringify({ detections: set.detections.map((d) => d.id), queries: summary }) + '\n');
      else {
        if (summary.length === 0) out('no new data\n');
        for (const s of summary)
          out(`${s.query}: ${s.batches} batch(es), ${s.rows} row(s) read, ${s.alerts} alert row(s)\n`);
      }
    },
  );
}

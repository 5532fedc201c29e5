/** `talon run`: ingest sources + detections + notifier as one long-running service (src/service). */
import type { Command } from 'commander';
import path from 'node:path';
import { UsageError, withConfig } from './common.js';
import { parseTrigger } from '../engine/trigger.js';
import { log } from '../log.js';

export function registerRunCommand(program: Command): void {
  withConfig(
    program
      .command('run')
      .description(
        'the whole pipeline as a service: configured ingest sources (ingest.watch.paths, ingest.sqs.queue_url), ' +
          'every enabled detection and the notifier, continuously; SIGTERM/SIGINT finish the batch in flight and exit',
      )
      .option('--lake <dir>', 'lake folder or s3://bucket/prefix (env TALON_LAKE; default ./talon-lake)')
      .option('--trigger <trigger>', 'detections and notifier: continuous | interval:30s', 'continuous'),
    async ({ config, opts }) => {
      const trigger = String(opts.trigger);
      try {
        if (parseTrigger(trigger).kind === 'available-now')
          throw new Error('use talon detect for available-now');
      } catch (e) {
        throw new UsageError(`--trigger: ${(e as Error).message}`);
      }
      const { runService } = await import('../service/run.js');
      const lake = config.lake.startsWith('s3://') ? config.lake : path.resolve(config.lake);
      const ac = new AbortController();
      const stop = () => {
        log.info('stopping: finishing the batches in flight');
        ac.abort();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await runService({ lake, config, signal: ac.signal, log, trigger });
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    },
    (o) => ({ lake: o.lake }),
  );
}

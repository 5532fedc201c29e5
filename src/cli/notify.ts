/**
 * `talon notify`: delivers new alerts to the configured destinations (checkpointed query
 * `notify` over the alerts table); `notify test DEST` sends a sample alert; `notify
 * dead-letters` lists alerts whose delivery gave up.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { CliError, UsageError, out, printRows, withConfig, withLake } from './common.js';
import { parseTrigger } from '../engine/trigger.js';
import type { BatchReport } from '../engine/query.js';
import { log } from '../log.js';
import { createRequire } from 'node:module';

function pkgVersion(): string {
  return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}

export function registerNotifyCommand(program: Command): void {
  const notify = withLake(
    program
      .command('notify')
      .description('send new alerts to the configured destinations (checkpointed; retries; deliveries table)')
      .option('--trigger <trigger>', 'available-now | continuous | interval:30s', 'available-now')
      .addOption(new Option('--format <format>', 'summary format').choices(['text', 'json']).default('text')),
    async ({ lake, config, opts }) => {
      let trigger;
      try {
        trigger = parseTrigger(String(opts.trigger), config.notify.poll_ms);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      if (config.notify.destinations.length === 0)
        throw new UsageError('notify: no destinations configured (notify.destinations in talon.yaml)');
      const { runNotifier } = await import('../notify/notifier.js');
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const totals: Record<string, number> = { batches: 0 };
      const onBatch = (r: BatchReport) => {
        totals.batches++;
        for (const [k, v] of Object.entries(r.metrics))
          if (k.startsWith('notify.')) totals[k.slice(7)] = (totals[k.slice(7)] ?? 0) + v;
        log.info('notify batch', { batch: r.batchId, replayed: r.replayed, ms: r.ms, ...r.metrics });
      };
      try {
        await runNotifier(lake, config.notify, trigger, {
          signal: ac.signal,
          onBatch,
          onError: (q, err) => log.error('notifier failed; retrying', { query: q, error: String(err) }),
          log: (msg, fields) => log.info(msg, fields),
        });
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
      if (opts.format === 'json') out(JSON.stringify(totals) + '\n');
      else if (totals.batches === 0) out('no new alerts\n');
      else
        out(
          `${totals.batches} batch(es): ${totals.messages ?? 0} message(s), ${totals.sent ?? 0} sent, ` +
            `${totals.suppressed ?? 0} suppressed, ${totals.failed ?? 0} failed, ${totals.dead_letter ?? 0} dead-lettered\n`,
        );
    },
  );

  withConfig(
    notify
      .command('test')
      .description('send a sample alert to one destination and print the result')
      .argument('<destination>', 'destination name from notify.destinations'),
    async ({ config, opts }, name: string) => {
      const c = config.notify.destinations.find((d) => d.name === name);
      if (!c) {
        const have = config.notify.destinations.map((d) => d.name).join(', ') || 'none configured';
        throw new UsageError(`notify test: no destination named ${JSON.stringify(name)} (have: ${have})`);
      }
      const { alertMessage, sampleAlert } = await import('../notify/message.js');
      const { createDestination } = await import('../notify/destinations/index.js');
      // A test message is not an alert: it is sent once, without retries, and not recorded.
      const dest = createDestination(c, { version: pkgVersion() });
      try {
        const [r] = await dest.send([alertMessage(sampleAlert(), config.notify.console_url)]);
        if (opts.format === 'json') out(JSON.stringify({ destination: name, type: c.type, ...r }) + '\n');
        else
          out(
            `${name} (${c.type}): ${r.ok ? 'ok' : r.retryable ? 'failed (retryable)' : 'failed'}` +
              (r.httpStatus ? ` HTTP ${r.httpStatus}` : '') +
              (r.reply ? ` ${r.reply}` : '') +
              (r.error ? `\n  error: ${r.error}` : '') +
              (r.response && !r.ok ? `\n  response: ${r.response}` : '') +
              '\n',
          );
        if (!r.ok) throw new CliError(`notify test: delivery to ${name} failed`);
      } finally {
        await dest.close?.();
      }
    },
  ).addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'));

  withLake(
    notify
      .command('dead-letters')
      .description('alerts whose delivery gave up after all retries (and, with --failed, permanent failures)')
      .option('--failed', 'include permanent failures (HTTP 4xx, SMTP 5xx)')
      .option('--limit <n>', 'at most this many rows', '100')
      .addOption(
        new Option('--format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'),
      ),
    async ({ lake, opts }) => {
      const { DeliveryLog } = await import('../notify/deliveries.js');
      const rows = await new DeliveryLog(lake).deadLetters({
        includeFailed: !!opts.failed,
        limit: Number(opts.limit) || 100,
      });
      printRows(
        opts.format,
        [
          'sent_at',
          'destination',
          'alert_id',
          'detection',
          'kind',
          'status',
          'attempt',
          'http_status',
          'error',
        ],
        rows,
      );
    },
    undefined,
    { existing: true },
  );
}

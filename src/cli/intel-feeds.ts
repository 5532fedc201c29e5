/**
 * `talon intel pull | retrohunt | list` (and the feed-format half of `talon intel load`):
 * registered on the `intel` command by registerIntelFeedCommands.
 */
import type { Command } from 'commander';
import path from 'node:path';
import { formatOption, out, printRows, withLake, UsageError } from './common.js';
import type { LakeContext } from './common.js';
import { parseDuration } from '../engine/duration.js';
import type { FeedFormat } from '../intel/feeds/index.js';

/** `talon intel load FILE --format F [--type T] [--dataset D]` for the feed formats. */
export async function runIntelLoad(ctx: LakeContext, file: string, format: string): Promise<void> {
  const { FEED_FORMATS } = await import('../intel/feeds/index.js');
  const { intelSettings } = await import('../intel/feeds/settings.js');
  const { formatLoadReport, loadIocFile } = await import('../intel/load.js');
  if (!(FEED_FORMATS as readonly string[]).includes(format))
    throw new UsageError(`--format: expected one of ${FEED_FORMATS.join(', ')}`);
  const report = await loadIocFile(ctx.lake, path.resolve(file), format as FeedFormat, {
    dataset: (ctx.opts.dataset as string | undefined) ?? format,
    type: ctx.opts.type as string | undefined,
    settings: intelSettings(ctx.config),
  });
  out(formatLoadReport(report, file) + '\n');
}

async function alertCount(ctx: LakeContext): Promise<number> {
  const { ALERTS_TABLE } = await import('../alerts/alerts.js');
  const t = await ctx.lake.table(ALERTS_TABLE);
  if (!t) return 0;
  const snap = await t.snapshot();
  if (snap.schema.fields.length === 0) return 0;
  const r = await ctx.lake.db.all<{ n: bigint }>(
    `SELECT count(*) AS n FROM ${await snap.scan()} WHERE list_contains(tags, 'retro')`,
  );
  return Number(r[0].n);
}

export function registerIntelFeedCommands(intel: Command): void {
  withLake(
    intel
      .command('pull')
      .description('fetch configured feeds (intel.feeds in talon.yaml) and load what changed')
      .argument('[feeds...]', 'feed names (default: all configured)')
      .option('--force', 'ignore interval, ETag and Last-Modified: fetch and load every feed'),
    async (ctx, names: string[]) => {
      const { intelSettings } = await import('../intel/feeds/settings.js');
      const { formatLoadReport } = await import('../intel/load.js');
      const { pullFeeds } = await import('../intel/pull.js');
      const results = await pullFeeds(ctx.lake, names ?? [], {
        settings: intelSettings(ctx.config),
        force: Boolean(ctx.opts.force),
      });
      if (results.length === 0) out('no feeds configured (intel.feeds in talon.yaml)\n');
      for (const r of results) {
        if (r.report) out(`${formatLoadReport(r.report, r.feed)}\n`);
        else out(`${r.feed}: ${r.status}${r.error ? ` (${r.error})` : ''}\n`);
      }
      if (results.some((r) => r.status === 'error')) process.exitCode = 1;
    },
  );

  withLake(
    intel
      .command('retrohunt')
      .description('match IoCs added since the last retro-hunt against past events (look-back)')
      .option('--lookback <duration>', 'how far back to look (default intel.retrohunt_lookback, 30d)'),
    async (ctx) => {
      const { intelSettings } = await import('../intel/feeds/settings.js');
      const { detectSettings } = await import('../detections/detection.js');
      const { retroHuntQuery } = await import('../detections/retrohunt.js');
      const { Pipeline } = await import('../engine/pipeline.js');
      const lookbackMs = ctx.opts.lookback
        ? parseDuration(String(ctx.opts.lookback))
        : intelSettings(ctx.config).retrohuntLookbackMs;
      const before = await alertCount(ctx);
      const query = retroHuntQuery(detectSettings(ctx.config.detect), { lookbackMs });
      const reports = await new Pipeline(ctx.lake, [query]).runAvailableNow();
      const newIocs = reports.reduce((a, r) => a + (r.metrics.retrohunt_new_iocs ?? 0), 0);
      const after = await alertCount(ctx);
      out(
        `retro-hunt: ${newIocs} new IoC(s) hunted over ${ctx.opts.lookback ?? 'the look-back'}; ${after - before} new retro alert(s)\n`,
      );
    },
  );

  withLake(
    formatOption(
      intel
        .command('list')
        .description('IoCs in the iocs table')
        .option('--type <ioc_type>', 'only this ioc_type (e.g. IPv4, FileHash-SHA256)')
        .option('--allow-listed', 'only allow-listed IoCs')
        .option('--no-allow-listed', 'only IoCs that can alert')
        .option('--search <text>', 'only IoCs whose value contains this text')
        .option('--active', 'only IoCs not expired')
        .option('--limit <n>', 'rows per page (default 100; 0 = all)')
        .option('--offset <n>', 'skip this many rows'),
      ['table', 'json', 'csv'] as const,
    ),
    async (ctx) => {
      const { listIocs, LIST_COLUMNS } = await import('../intel/list.js');
      const num = (v: unknown): number | undefined => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0)
          throw new UsageError(`expected a whole number ≥ 0, got ${String(v)}`);
        return n;
      };
      const page = await listIocs(ctx.lake, {
        type: ctx.opts.type as string | undefined,
        allowListed: ctx.opts.allowListed as boolean | undefined,
        search: ctx.opts.search as string | undefined,
        activeAt: ctx.opts.active ? new Date() : undefined,
        limit: num(ctx.opts.limit),
        offset: num(ctx.opts.offset),
      });
      printRows(ctx.opts.format, [...LIST_COLUMNS], page.rows);
      if (page.offset + page.rows.length < page.total)
        process.stderr.write(
          `rows ${page.offset + 1}-${page.offset + page.rows.length} of ${page.total}; --offset ${page.offset + page.rows.length} for more\n`,
        );
    },
    undefined,
    { existing: true },
  );
}

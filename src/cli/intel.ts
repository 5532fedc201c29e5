/** `talon intel load`: threat-intelligence indicators into the `iocs` table. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { out, withLake } from './common.js';
import { registerIntelFeedCommands, runIntelLoad } from './intel-feeds.js';

/**
 * `--format` of `intel load`: csv (the iocs.csv layout) first, then intel/feeds `FEED_FORMATS`,
 * spelled out here because that module loads every feed parser. cli/startup.test.ts checks the
 * two agree.
 */
export const LOAD_FORMATS = ['csv', 'otx', 'urlhaus', 'malwarebazaar', 'threatfox', 'misp', 'stix', 'text'];

export function registerIntelCommand(program: Command): void {
  const intel = program.command('intel').description('threat intelligence (IoCs) for ioc_match');
  withLake(
    intel
      .command('load')
      .description('load IoCs from a file into the iocs table (MERGE on ioc_type, ioc)')
      .argument('<file>', 'the file to load')
      .addOption(new Option('--format <format>', 'file format').choices(LOAD_FORMATS).default('csv'))
      .option('--type <type>', 'declared ioc_type for text files (or auto)')
      .option('--dataset <name>', 'dataset name for rows without one (default: the file name)'),
    async (ctx, file: string) => {
      const { lake, opts } = ctx;
      if (opts.format !== 'csv') return runIntelLoad(ctx, file, opts.format as string);
      const { csvIocsRelation } = await import('../intel/csv.js');
      const { mergeIocs } = await import('../intel/iocs.js');
      const abs = path.resolve(file);
      const rel = await csvIocsRelation(lake.db, abs, {
        dataset: (opts.dataset as string) ?? path.basename(file),
      });
      // The file's content hash as txn appId: loading the same file twice commits once.
      const digest = createHash('sha256')
        .update(await readFile(abs))
        .digest('hex')
        .slice(0, 32);
      const rows = await lake.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM (${rel})`);
      const { AllowList, reconcileAllowList } = await import('../intel/load.js');
      const { intelSettings } = await import('../intel/feeds/settings.js');
      const allowEntries = intelSettings(ctx.config).allowList;
      const res = await mergeIocs(lake, rel, digest, { allowList: new AllowList(allowEntries) });
      // Flags of rows already stored follow the configured list too (it may have changed).
      await reconcileAllowList(lake, allowEntries);
      out(
        `${Number(rows[0].n)} IoC row(s) read from ${file}; iocs version ${res.version}${res.skipped ? ' (already loaded)' : ''}\n`,
      );
    },
  );
  registerIntelFeedCommands(intel);
}

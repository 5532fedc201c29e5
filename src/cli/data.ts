/**
 * Data commands: `talon tables`, `talon query`, `talon table history|optimize|vacuum`,
 * `talon maintain`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import {
  CliError,
  UsageError,
  csvLine,
  formatOption,
  numberOption,
  out,
  printRows,
  renderTable,
  withLake,
  type LakeContext,
} from './common.js';
import type { DeltaTable } from '../lake/table.js';
import { maintainLake } from '../lake/maintenance.js';
import { log } from '../log.js';

const EXISTING = { existing: true };

export function registerDataCommands(program: Command): void {
  withLake(
    formatOption(
      program.command('tables').description('list the lake’s tables: name, version, rows, files, bytes'),
      ['table', 'json', 'csv'],
    ),
    async ({ lake, opts }) => {
      const rows = await lake.summary();
      printRows(
        opts.format,
        ['name', 'version', 'rows', 'files', 'bytes'],
        rows as unknown as Record<string, unknown>[],
      );
    },
    undefined,
    EXISTING,
  );

  withLake(
    formatOption(
      program
        .command('query')
        .description(
          'run one read-only SQL query over the lake (every table is a view by its name, case-insensitive); ' +
            'SQL "-" reads it from stdin',
        )
        .argument('<sql>', 'a SELECT (or WITH … SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)'),
      ['table', 'json', 'csv'],
    ),
    async (ctx, sql: string) => {
      await runQuery(ctx, sql === '-' ? await readStdin() : sql);
    },
    undefined,
    EXISTING,
  );

  const table = program.command('table').description('table maintenance and history');

  withLake(
    formatOption(
      table
        .command('history')
        .description('the commits of a table, newest first')
        .argument('<name>', 'table name (case-insensitive)')
        .option('--limit <n>', 'at most this many commits'),
      ['table', 'json', 'csv'],
    ),
    async ({ lake, opts }, name: string) => {
      const t = await requireTable(lake, name);
      const limit = numberOption('--limit', opts.limit);
      const entries = await t.history(limit);
      const rows = entries.map((e) => ({
        version: e.version,
        timestamp: new Date(e.timestamp).toISOString(),
        operation: e.operation ?? null,
        parameters: e.operationParameters ?? null,
        metrics: e.operationMetrics ?? null,
        txn: e.txn ?? null,
      }));
      printRows(opts.format, ['version', 'timestamp', 'operation', 'parameters', 'metrics', 'txn'], rows);
    },
    undefined,
    EXISTING,
  );

  withLake(
    formatOption(
      table
        .command('optimize')
        .description('compact small files (per partition) into larger ones; a new version, same rows')
        .argument('<name>', 'table name (case-insensitive)')
        .option('--target-file-size <bytes>', 'target size of a compacted file')
        .option('--where <predicate>', 'only partitions matching this SQL predicate over partition columns'),
      ['table', 'json'],
    ),
    async ({ lake, opts }, name: string) => {
      const t = await requireTable(lake, name);
      const targetFileSize = numberOption('--target-file-size', opts.targetFileSize);
      const where = typeof opts.where === 'string' ? opts.where : undefined;
      const result = await t.optimize({
        ...(targetFileSize !== undefined ? { targetFileSize } : {}),
        ...(where !== undefined ? { where } : {}),
      });
      const display = await t.name();
      if (opts.format === 'json') {
        out(JSON.stringify({ table: display, ...result }, null, 2) + '\n');
      } else {
        const m = result.metrics;
        out(
          result.skipped || (m.numRemovedFiles ?? 0) === 0
            ? `${display}: nothing to compact (version ${result.version})\n`
            : `${display}: version ${result.version}, compacted ${m.numRemovedFiles ?? 0} files into ${m.numAddedFiles ?? 0}\n`,
        );
      }
    },
    undefined,
    EXISTING,
  );

  withLake(
    formatOption(
      table
        .command('vacuum')
        .description(
          'delete data files no longer referenced by the table and older than the retention period',
        )
        .argument('<name>', 'table name (case-insensitive)')
        .option(
          '--retention-hours <h>',
          "keep unreferenced files younger than this (default: the table's delta.deletedFileRetentionDuration, else 168)",
        )
        .option(
          '--force',
          'allow a retention below that default (only when no other process writes or reads the table)',
        )
        .option('--dry-run', 'list the files that would be deleted, delete nothing'),
      ['table', 'json'],
    ),
    async ({ lake, opts }, name: string) => {
      const t = await requireTable(lake, name);
      const retentionHours = numberOption('--retention-hours', opts.retentionHours);
      const dryRun = opts.dryRun === true;
      const { deleted } = await t.vacuum({
        ...(retentionHours !== undefined ? { retentionHours } : {}),
        dryRun,
        force: opts.force === true,
      });
      const display = await t.name();
      if (opts.format === 'json') {
        out(JSON.stringify({ table: display, dryRun, files: deleted }, null, 2) + '\n');
      } else {
        for (const f of deleted) out(`${dryRun ? 'would delete' : 'deleted'} ${f}\n`);
        out(
          `${display}: ${dryRun ? 'would delete' : 'deleted'} ${deleted.length} file${deleted.length === 1 ? '' : 's'}\n`,
        );
      }
    },
    undefined,
    EXISTING,
  );

  withLake(
    formatOption(
      program
        .command('maintain')
        .description(
          'OPTIMIZE then VACUUM every table (what `talon run` does on its `maintenance` timer); for cron',
        )
        .option('--no-optimize', 'do not compact small files')
        .option('--no-vacuum', 'do not delete unreferenced files')
        .option(
          '--target-file-size <bytes>',
          'target size of a compacted file (default: maintenance.target_file_size, else 128 MiB)',
        ),
      ['table', 'json', 'csv'],
    ),
    async ({ lake, opts, config }) => {
      const targetFileSize =
        numberOption('--target-file-size', opts.targetFileSize) ?? config.maintenance.target_file_size;
      const rows = await maintainLake(lake, {
        optimize: opts.optimize !== false,
        vacuum: opts.vacuum !== false,
        ...(targetFileSize !== undefined ? { targetFileSize } : {}),
        onTable: (r) => {
          if (r.error) log.warn('maintain: table left as it was', { ...r });
        },
      });
      printRows(
        opts.format,
        ['table', 'compactedFiles', 'compactedInto', 'vacuumedFiles', 'error'],
        rows as unknown as Record<string, unknown>[],
      );
      const failed = rows.filter((r) => r.error);
      if (failed.length)
        throw new CliError(
          `maintain: ${failed.length} table(s) failed: ${failed.map((r) => r.table).join(', ')}`,
        );
    },
    undefined,
    EXISTING,
  );
}

/** Tables the lake could not open (e.g. a Delta feature Talon cannot read) are named on stderr. */
function warnUnreadable(lake: LakeContext['lake']): void {
  for (const [table, reason] of lake.viewErrors) log.warn('table not readable', { table, reason });
}

async function requireTable(lake: LakeContext['lake'], name: string): Promise<DeltaTable> {
  const t = await lake.table(name);
  if (!t) throw new CliError(`no table named "${name}" in ${lake.location}`);
  return t;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** DuckDB column types shown right-aligned. */
async function numericTypes(): Promise<Set<number>> {
  const { default: duckdb } = await import('@duckdb/node-api');
  const t = duckdb.DuckDBTypeId;
  return new Set<number>([
    t.TINYINT,
    t.SMALLINT,
    t.INTEGER,
    t.BIGINT,
    t.HUGEINT,
    t.UTINYINT,
    t.USMALLINT,
    t.UINTEGER,
    t.UBIGINT,
    t.UHUGEINT,
    t.FLOAT,
    t.DOUBLE,
    t.DECIMAL,
  ]);
}

/**
 * `talon query`: views over every table, then DuckDB locked to the lake's folder, then the
 * checked statement, streamed to stdout. Values are DuckDB's JSON-safe forms: 64-bit and
 * larger integers and timestamps as strings (FDR ids exceed 2^53), nested types as JSON.
 */
async function runQuery(ctx: LakeContext, sql: string): Promise<void> {
  const { lake, opts } = ctx;
  if (sql.trim() === '') throw new UsageError('query: the SQL is empty');
  const { lockDown, runReadOnly, translateError } = await import('../sql/readonly.js');
  await lake.registerViews();
  warnUnreadable(lake);
  const allowed = ctx.lakeDir ?? ctx.cacheDir;
  if (!allowed) throw new Error('query: no local folder to allow for the lake');
  const spill = await mkdtemp(path.join(os.tmpdir(), 'talon-query-'));
  try {
    const connection = lake.db.connection;
    await lockDown(connection, { allowedDirectories: [allowed], tempDirectory: spill });
    const result = await runReadOnly(connection, sql);
    const columns = result.deduplicatedColumnNames();
    const format = opts.format ?? 'table';
    try {
      if (format === 'json') {
        let first = true;
        out('[');
        for await (const rows of result.yieldRowsJson()) {
          let text = '';
          for (const r of rows) {
            const obj: Record<string, unknown> = {};
            columns.forEach((c, i) => (obj[c] = r[i]));
            text += (first ? '\n' : ',\n') + JSON.stringify(obj);
            first = false;
          }
          out(text);
        }
        out(first ? ']\n' : '\n]\n');
      } else if (format === 'csv') {
        out(csvLine(columns));
        for await (const rows of result.yieldRowsJson()) out(rows.map((r) => csvLine(r)).join(''));
      } else {
        const all: unknown[][] = [];
        for await (const rows of result.yieldRowsJson()) all.push(...rows);
        const numeric = await numericTypes();
        const rightAlign = columns.map((_c, i) => numeric.has(result.columnTypeId(i)));
        out(renderTable(columns, all, { maxWidth: process.stdout.isTTY ? 80 : Infinity, rightAlign }));
        out(`(${all.length} row${all.length === 1 ? '' : 's'})\n`);
      }
    } catch (err) {
      throw translateError(err);
    }
  } finally {
    await rm(spill, { recursive: true, force: true });
  }
}

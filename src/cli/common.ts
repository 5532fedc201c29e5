/**
 * What every `talon` command shares: loading the config (global `--config`), the `--lake`
 * option, `--format`, opening and closing the lake, printing rows, and errors → exit codes.
 *
 * A command module reads like:
 *
 *   withLake(
 *     program.command('tables').description('…'),
 *     async ({ lake, opts }) => printRows(opts.format, columns, await lake.summary()),
 *   );
 *
 * Exit codes: 0 success, 1 failure (`talon: <message>` on stderr), 2 usage error (bad flag,
 * missing argument, invalid configuration).
 *
 * Start-up cost: `talon --help` builds every command, so this module and the command modules
 * import only commander, node built-ins and light modules at the top; everything that pulls in
 * DuckDB, the AWS SDK, kafkajs, nodemailer, zod… is imported inside the action
 * (`await import(…)`). cli/startup.test.ts checks it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import type { TalonConfig } from '../config/config.js';
import type { Lake } from '../lake/lake.js';

/** A failure to report as `talon: <message>` with an exit code (default 1). */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** The user asked for something malformed (exit code 2). */
export class UsageError extends CliError {
  override name = 'UsageError';
  constructor(message: string) {
    super(message, 2);
  }
}

/**
 * The exit code for an error thrown by a command. A `ConfigError` is recognised by its name:
 * importing config/load.js (zod, yaml) only to test `instanceof` would cost every start.
 */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (isConfigError(err)) return 2;
  return 1;
}

/** An invalid configuration (config/load.ts `ConfigError`). */
export function isConfigError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ConfigError';
}

export type Opts = Record<string, unknown>;

export interface CommandContext {
  config: TalonConfig;
  /** The command's own options merged with the global ones (`config`). */
  opts: Opts;
  command: Command;
}

export interface LakeContext extends CommandContext {
  lake: Lake;
  /** Absolute local folder of the lake, or undefined for s3:// lakes. */
  lakeDir: string | undefined;
  /** The local folder holding downloaded files of an s3:// lake (its store's cache). */
  cacheDir: string | undefined;
}

/** Adds `--lake DIR`. Its value wins over TALON_LAKE and the config file's `lake`. */
export function lakeOption(cmd: Command): Command {
  return cmd.option(
    '--lake <dir>',
    'lake folder or s3://bucket/prefix (env TALON_LAKE; default ./talon-lake)',
  );
}

/** Adds `--format <fmt>` restricted to `formats`, default the first one. */
export function formatOption<F extends string>(
  cmd: Command,
  formats: readonly F[],
  defaultFormat = formats[0],
): Command {
  return cmd.addOption(
    new Option('--format <format>', 'output format')
      .choices(formats as readonly string[])
      .default(defaultFormat),
  );
}

/** Loads the config for a command: global `--config`, env, then `overrides` (dotted keys). */
export async function configFor(command: Command, overrides: Opts = {}): Promise<TalonConfig> {
  const all = command.optsWithGlobals<Opts>();
  const { loadConfig } = await import('../config/load.js');
  return loadConfig({
    configPath: typeof all.config === 'string' ? all.config : undefined,
    overrides,
  });
}

/**
 * Sets `cmd`'s action: loads the config and calls `fn` with the context and the positional
 * arguments. `overrides` maps the command's options to config keys (for flags that override
 * a setting, e.g. `(o) => ({ 'ingest.batch_events': o.batchEvents })`).
 */
export function withConfig<A extends unknown[] = string[]>(
  cmd: Command,
  fn: (ctx: CommandContext, ...args: A) => Promise<void>,
  overrides?: (opts: Opts) => Opts,
): Command {
  return cmd.action(async (...actionArgs: unknown[]) => {
    const command = actionArgs[actionArgs.length - 1] as Command;
    const opts = command.optsWithGlobals<Opts>();
    const config = await configFor(command, overrides?.(opts) ?? {});
    await fn({ config, opts, command }, ...(actionArgs.slice(0, -2) as A));
  });
}

export interface WithLakeOptions {
  /**
   * The command only reads: a local lake folder must already exist (opening creates one, and
   * a mistyped `--lake` should be an error, not an empty lake).
   */
  existing?: boolean;
}

/**
 * Adds `--lake` to `cmd` and sets its action: loads the config, opens the lake, calls `fn`,
 * and always closes the lake.
 */
export function withLake<A extends unknown[] = string[]>(
  cmd: Command,
  fn: (ctx: LakeContext, ...args: A) => Promise<void>,
  overrides?: (opts: Opts) => Opts,
  options: WithLakeOptions = {},
): Command {
  lakeOption(cmd);
  return withConfig<A>(
    cmd,
    async (ctx, ...args) => {
      const location = ctx.config.lake;
      const isS3 = location.startsWith('s3://');
      const lakeDir = isS3 ? undefined : path.resolve(location);
      if (options.existing && lakeDir && !existsSync(lakeDir)) {
        throw new CliError(`no lake at ${lakeDir} (set it with --lake, TALON_LAKE or lake: in talon.yaml)`);
      }
      const { Lake } = await import('../lake/lake.js');
      const lake = await Lake.open(lakeDir ?? location);
      try {
        // An S3 lake's files are read from its local download cache (TALON_S3_CACHE).
        const cacheDir = isS3 ? (lake.store as { cacheDir?: string }).cacheDir : undefined;
        await fn({ ...ctx, lake, lakeDir, cacheDir }, ...args);
      } finally {
        lake.close();
      }
    },
    (opts) => ({ ...(overrides?.(opts) ?? {}), lake: opts.lake }),
  );
}

/** Parses a non-negative number option, or throws a usage error naming the flag. */
export function numberOption(flag: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value === 'boolean' || value === '' || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`${flag}: expected a non-negative number, received "${String(value)}"`);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Output

export type OutputFormat = 'table' | 'json' | 'csv';

/** Writes text to stdout (command output; logs go to stderr). */
export function out(text: string): void {
  process.stdout.write(text);
}

/** A value as one cell of a table or CSV: strings as is, null empty/NULL, objects as JSON. */
export function cellText(value: unknown, nullText = ''): string {
  if (value === null || value === undefined) return nullText;
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint' || typeof value === 'number' || typeof value === 'boolean')
    return String(value);
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/**
 * An aligned text table. Columns whose values are all numbers (or `rightAlign[i]`) are
 * right-aligned. `maxWidth` caps each cell (with '…').
 */
export function renderTable(
  columns: string[],
  rows: unknown[][],
  opts: { maxWidth?: number; rightAlign?: boolean[] } = {},
): string {
  const maxWidth = opts.maxWidth ?? Infinity;
  const cells = rows.map((r) =>
    r.map((v) => {
      const t = cellText(v, 'NULL').replace(/[\r\n\t]/g, ' ');
      return t.length > maxWidth ? t.slice(0, Math.max(1, maxWidth - 1)) + '…' : t;
    }),
  );
  const right = columns.map(
    (_c, i) =>
      opts.rightAlign?.[i] ??
      (rows.length > 0 &&
        rows.every((r) => r[i] === null || typeof r[i] === 'number' || typeof r[i] === 'bigint')),
  );
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => (right[i] ? v.padStart(widths[i]) : v.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

/** One CSV record (RFC 4180): quoted when it contains a comma, quote, or line break. */
export function csvLine(values: unknown[]): string {
  return (
    values
      .map((v) => {
        const t = cellText(v);
        return /[",\r\n]/.test(t) || /^\s|\s$/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
      })
      .join(',') + '\r\n'
  );
}

/** Prints rows (objects) as a table, a JSON array, or CSV, with the given column order. */
export function printRows(format: unknown, columns: string[], rows: Record<string, unknown>[]): void {
  const fmt = (format ?? 'table') as OutputFormat;
  if (fmt === 'json') {
    out(JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
  } else if (fmt === 'csv') {
    out(csvLine(columns) + rows.map((r) => csvLine(columns.map((c) => r[c]))).join(''));
  } else {
    out(
      renderTable(
        columns,
        rows.map((r) => columns.map((c) => r[c])),
        { maxWidth: process.stdout.isTTY ? 80 : Infinity },
      ),
    );
  }
}

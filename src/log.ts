/**
 * Logging and progress for Talon's long-running commands (ingest, generate, detect, …).
 *
 * Everything goes to stderr, so stdout stays clean for command output (`--format json`).
 * - Not a TTY (pipes, files, CI, containers): one JSON object per line,
 *   `{"ts":"2026-…Z","level":"info","msg":"ingested batch","events":1200}`.
 * - A TTY: human lines, `12:00:01 INFO  ingested batch events=1200`.
 * Level from `TALON_LOG` = silent | error | warn | info | debug (default info).
 *
 * API:
 *   import { log, Progress } from '../log.js';
 *   log.info('ingested batch', { events: 1200 });
 *   const ingestLog = log.child({ source: 'sqs' });          // fields added to every line
 *   const p = new Progress('ingest', { total: files.length, unit: 'files' });
 *   p.tick();   …   p.finish({ events });     // final line with totals and rate
 */

export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug';
export type LogFields = Record<string, unknown>;

const LEVEL_RANK: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };

/** TTY streams currently showing a progress line: a log line clears it first, then it is redrawn. */
const progressLineShown = new WeakSet<LogStream>();

/** Where log lines go: anything with `write`; `isTTY` picks the human format. */
export interface LogStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  /** Terminal width, when known (used to keep the progress line on one row). */
  columns?: number;
}

export interface LoggerOptions {
  /** Default: `TALON_LOG`, else 'info'. */
  level?: LogLevel;
  /** Default: process.stderr. */
  stream?: LogStream;
  /** Default: 'human' when the stream is a TTY, else 'json'. */
  format?: 'json' | 'human';
  /** Fields added to every line. */
  fields?: LogFields;
  /** Clock, for tests. */
  now?: () => number;
}

export function parseLogLevel(value: string | undefined): LogLevel {
  const v = (value ?? '').trim().toLowerCase();
  if (v === '') return 'info';
  if (v in LEVEL_RANK) return v as LogLevel;
  throw new Error(`TALON_LOG: expected one of silent, error, warn, info, debug, received "${value}"`);
}

export class Logger {
  readonly level: LogLevel;
  readonly format: 'json' | 'human';
  readonly stream: LogStream;
  private readonly fields: LogFields;
  readonly now: () => number;

  constructor(opts: LoggerOptions = {}) {
    this.level = opts.level ?? safeEnvLevel();
    this.stream = opts.stream ?? process.stderr;
    this.format = opts.format ?? (this.stream.isTTY ? 'human' : 'json');
    this.fields = opts.fields ?? {};
    this.now = opts.now ?? Date.now;
  }

  /** A logger writing to the same place with extra fields on every line. */
  child(fields: LogFields): Logger {
    return new Logger({
      level: this.level,
      stream: this.stream,
      format: this.format,
      fields: { ...this.fields, ...fields },
      now: this.now,
    });
  }

  enabled(level: Exclude<LogLevel, 'silent'>): boolean {
    return LEVEL_RANK[level] <= LEVEL_RANK[this.level];
  }

  error(msg: string, fields?: LogFields): void {
    this.write('error', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write('warn', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.write('info', msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.write('debug', msg, fields);
  }

  private write(level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const all = { ...this.fields, ...fields };
    const ts = new Date(this.now()).toISOString();
    if (this.format === 'json') {
      this.stream.write(JSON.stringify({ ts, level, msg, ...all }, jsonSafe) + '\n');
    } else {
      const kv = Object.entries(all)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${humanValue(v)}`)
        .join(' ');
      const head = `${ts.slice(11, 19)} ${level.toUpperCase().padEnd(5)} ${msg}`;
      let clear = '';
      if (progressLineShown.has(this.stream)) {
        progressLineShown.delete(this.stream);
        clear = '\r\x1b[2K';
      }
      this.stream.write(clear + (kv ? `${head} ${kv}` : head) + '\n');
    }
  }
}

function safeEnvLevel(): LogLevel {
  try {
    return parseLogLevel(process.env.TALON_LOG);
  } catch {
    return 'info';
  }
}

/** JSON.stringify replacer: bigint → number when exact, else string; Error → message. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof Error) return value.message;
  return value;
}

function humanValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || v === null)
    return String(v);
  return JSON.stringify(v, jsonSafe);
}

/** The process-wide logger: stderr, level from TALON_LOG. */
export const log = new Logger();

export interface ProgressOptions {
  /** Expected final count; without it only the count and rate are shown. */
  total?: number;
  /** Unit shown after the count, e.g. 'events', 'files'. Default 'items'. */
  unit?: string;
  /** Default: the process logger. Level below info → no output at all. */
  logger?: Logger;
  /** TTY: the line is redrawn at most this often. Default 100 ms (~10×/s). */
  redrawMs?: number;
  /** Not a TTY: a `{"msg":"progress",…}` line at most this often. Default 5000 ms. */
  logEveryMs?: number;
}

/**
 * Progress of one long task. On a TTY (human format) one status line is redrawn in place;
 * otherwise `progress` log lines are emitted periodically, so a pipeline run under systemd or
 * in CI shows it is alive without flooding the log. Counting is cheap: `tick` only does I/O
 * when the interval has elapsed.
 */
export class Progress {
  private n = 0;
  private readonly startedAt: number;
  private lastOutputAt: number;
  private finished = false;
  private readonly logger: Logger;
  private readonly interactive: boolean;
  private readonly intervalMs: number;

  constructor(
    readonly task: string,
    private readonly opts: ProgressOptions = {},
  ) {
    this.logger = opts.logger ?? log;
    this.interactive = this.logger.format === 'human' && this.logger.stream.isTTY === true;
    this.intervalMs = this.interactive ? (opts.redrawMs ?? 100) : (opts.logEveryMs ?? 5000);
    this.startedAt = this.logger.now();
    this.lastOutputAt = this.startedAt;
  }

  /** The count so far. */
  get count(): number {
    return this.n;
  }

  /** Adds `n` (default 1) to the count. */
  tick(n = 1): void {
    this.update(this.n + n);
  }

  /** Sets the count to an absolute value. */
  update(count: number): void {
    this.n = count;
    if (this.finished || !this.logger.enabled('info')) return;
    const now = this.logger.now();
    if (now - this.lastOutputAt < this.intervalMs) return;
    this.lastOutputAt = now;
    this.output(now);
  }

  /** Ends the task: clears the TTY line and writes one final line with the totals and `fields`. */
  finish(fields?: LogFields): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.logger.enabled('info')) return;
    const now = this.logger.now();
    const seconds = (now - this.startedAt) / 1000;
    this.logger.info(`${this.task} done`, {
      [this.unit]: this.n,
      seconds: Math.round(seconds * 10) / 10,
      per_second: rate(this.n, seconds),
      ...fields,
    });
  }

  private get unit(): string {
    return this.opts.unit ?? 'items';
  }

  private output(now: number): void {
    const seconds = (now - this.startedAt) / 1000;
    const perSecond = rate(this.n, seconds);
    const total = this.opts.total;
    if (!this.interactive) {
      this.logger.info('progress', {
        task: this.task,
        done: this.n,
        ...(total !== undefined ? { total } : {}),
        unit: this.unit,
        per_second: perSecond,
      });
      return;
    }
    const n = this.n.toLocaleString('en-US');
    let line: string;
    if (total !== undefined && total > 0) {
      const frac = Math.min(1, this.n / total);
      const width = 24;
      const filled = Math.round(frac * width);
      line =
        `${this.task} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${Math.floor(frac * 100)}% ` +
        `${n}/${total.toLocaleString('en-US')} ${this.unit}`;
    } else {
      line = `${this.task} ${n} ${this.unit}`;
    }
    line += ` ${perSecond.toLocaleString('en-US')}/s`;
    const cols = this.logger.stream.columns;
    if (cols && line.length >= cols) line = line.slice(0, cols - 1);
    this.logger.stream.write(`\r\x1b[2K${line}`);
    progressLineShown.add(this.logger.stream);
  }
}

function rate(count: number, seconds: number): number {
  return seconds > 0 ? Math.round(count / seconds) : 0;
}

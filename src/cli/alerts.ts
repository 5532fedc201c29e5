/** `talon alerts list`: the alerts table, filtered. */
import type { Command } from 'commander';
import { UsageError, formatOption, printRows, withLake } from './common.js';
import type { AlertStatus, Severity } from '../alerts/alerts.js';
import { parseDuration } from '../engine/duration.js';

/**
 * alerts/alerts.ts `SEVERITIES`, spelled out for the help text: that module loads DuckDB.
 * cli/startup.test.ts checks the two agree.
 */
export const SEVERITY_NAMES = 'info, low, medium, high, critical';

/** `--since`: an ISO time, or a duration back from now (`24h`, `7d`). */
export function parseSince(text: string, now = Date.now()): Date {
  if (/^\d+(\.\d+)?\s*(ms|s|m|h|d|w)$/i.test(text.trim())) return new Date(now - parseDuration(text));
  const d = new Date(text);
  if (Number.isNaN(d.getTime()))
    throw new UsageError(`--since: expected an ISO time or a duration like 24h, got "${text}"`);
  return d;
}

export function registerAlertsCommand(program: Command): void {
  const alerts = program.command('alerts').description('alerts raised by the detections');
  withLake(
    formatOption(
      alerts
        .command('list')
        .description('list alerts (oldest event first)')
        .option('--since <time>', 'detected at or after: ISO time or a duration back from now (24h, 7d)')
        .option('--severity <level>', `minimum severity: ${SEVERITY_NAMES}`)
        .option('--detection <id>', 'only this detection')
        .option('--status <status>', 'open | acknowledged | closed')
        .option('--limit <n>', 'at most this many'),
      ['table', 'json', 'csv'],
    ),
    async ({ lake, opts }) => {
      const { listAlerts, SEVERITIES } = await import('../alerts/alerts.js');
      if (opts.severity && !SEVERITIES.includes(opts.severity as Severity)) {
        throw new UsageError(`--severity: expected one of ${SEVERITIES.join(', ')}`);
      }
      const rows = await listAlerts(lake, {
        since: opts.since ? parseSince(String(opts.since)) : undefined,
        severity: opts.severity as Severity | undefined,
        detection: opts.detection as string | undefined,
        status: opts.status as AlertStatus | undefined,
        limit: opts.limit ? Number(opts.limit) : undefined,
      });
      printRows(
        opts.format,
        ['event_time', 'severity', 'detection', 'host', 'user', 'description', 'alert_id', 'status'],
        rows as unknown as Record<string, unknown>[],
      );
    },
  );
}

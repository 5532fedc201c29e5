/**
 * When a query runs its micro-batches, as Spark's triggers:
 * - `available-now`: everything up to now in bounded batches, then stop (for cron);
 * - `interval:N`: a round every N (e.g. `interval:30s`), forever;
 * - `continuous`: as soon as a source table gets a new commit (polled cheaply), forever.
 */
import { parseDuration } from './duration.js';

export type Trigger =
  { kind: 'available-now' } | { kind: 'interval'; everyMs: number } | { kind: 'continuous'; pollMs: number };

export function parseTrigger(text: string, defaultPollMs = 100): Trigger {
  const t = text.trim().toLowerCase();
  if (t === 'available-now' || t === 'availablenow' || t === 'once') return { kind: 'available-now' };
  if (t === 'continuous') return { kind: 'continuous', pollMs: defaultPollMs };
  const m = /^(?:interval|processing-?time)[:=](.+)$/.exec(t);
  if (m) {
    const everyMs = parseDuration(m[1]);
    if (everyMs <= 0) throw new Error(`trigger interval must be positive: ${text}`);
    return { kind: 'interval', everyMs };
  }
  throw new Error(`unknown trigger ${JSON.stringify(text)} (available-now, continuous, interval:30s)`);
}

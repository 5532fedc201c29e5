/**
 * The destination contract, in one place. A destination turns notification messages into
 * its channel's wire format and reports, per message, what happened — never throwing for a
 * delivery failure, so the notifier can record every attempt and decide about retries.
 *
 * Rules every destination follows:
 * - `send(messages)` returns exactly one DeliveryResult per message, in order. A channel that
 *   batches (Splunk HEC, Kafka) sends several messages at once and gives each the batch's result.
 * - Attacker-controlled text (command lines, domains, user and file names) is escaped for the
 *   channel by the destination's formatter (see ./escape.ts).
 * - `retryable` is true only for failures a later attempt may fix: timeouts, connection
 *   errors, HTTP 429 and 5xx, SMTP 4xx. Other 4xx / SMTP 5xx fail at once.
 * - `retryAfterMs` carries a server's `Retry-After`.
 * - A destination that holds a connection (SMTP pool, Kafka producer, TCP syslog) releases it in `close()`.
 */
import type { Alert } from '../alerts/alerts.js';

/** What one notification is about. */
export type MessageKind = 'alert' | 'digest' | 'resolve';

export interface NotifyMessage {
  /** Stable id: the alert id for one alert, `digest:<hash>` for a digest, `resolve:<id>`. */
  id: string;
  kind: MessageKind;
  /** Alerts shown in the message: one, or the first N of a digest. */
  alerts: Alert[];
  /** Every alert the message stands for (digest: all of them, shown or not). */
  alertIds: string[];
  /** How many alerts the message stands for, repeats folded by suppression included. */
  count: number;
  /** The detection of the alerts (digests are per detection). */
  detection: string;
  /** Highest severity among the alerts. */
  severity: Alert['severity'];
  /** Link to the alert in the console, when `notify.console_url` is set. */
  link?: string;
}

export interface DeliveryResult {
  ok: boolean;
  /** A later attempt may succeed (timeout, connection error, 429, 5xx, SMTP 4xx). */
  retryable: boolean;
  /** HTTP status, when the channel is HTTP. */
  httpStatus?: number;
  /** SMTP reply / Kafka partition+offset / syslog bytes: the channel's own acknowledgement. */
  reply?: string;
  /** Response body or error text (truncated by the notifier). */
  response?: string;
  error?: string;
  /** Server-requested wait before the next attempt (HTTP 429 Retry-After). */
  retryAfterMs?: number;
}

export interface Destination {
  readonly name: string;
  readonly type: string;
  /**
   * Channels made for machines (PagerDuty, Kafka, Splunk, syslog, file, webhook) get one
   * message per alert even when grouping is on; humans' channels (Slack, Teams, email) get digests.
   */
  readonly perAlert: boolean;
  send(messages: NotifyMessage[]): Promise<DeliveryResult[]>;
  close?(): Promise<void>;
}

export function okResult(extra: Partial<DeliveryResult> = {}): DeliveryResult {
  return { ok: true, retryable: false, ...extra };
}

export function failResult(
  error: unknown,
  retryable: boolean,
  extra: Partial<DeliveryResult> = {},
): DeliveryResult {
  return { ok: false, retryable, error: error instanceof Error ? error.message : String(error), ...extra };
}

/**
 * PagerDuty Events API v2: `trigger` with dedup_key = alert id (PagerDuty folds repeats of a
 * dedup key into one incident, so an at-least-once resend after a crash is harmless), and
 * `resolve` with the same key when the alert is closed. A 202 is success.
 */
import type { Destination, DeliveryResult, NotifyMessage } from '../destination.js';
import { truncate } from '../escape.js';
import { postBody } from '../http.js';
import { alertJson, keyEvidence, messageTitle } from '../message.js';
import { mapLimit } from '../limit.js';

/** Talon severity → PagerDuty's four (critical, error, warning, info). */
export const PAGERDUTY_SEVERITY: Record<string, string> = {
  critical: 'critical',
  high: 'error',
  medium: 'warning',
  low: 'info',
  info: 'info',
};

export function pagerDutyEvent(
  m: NotifyMessage,
  routingKey: string,
  source = 'talon',
): Record<string, unknown> {
  const a = m.alerts[0];
  if (m.kind === 'resolve')
    return { routing_key: routingKey, event_action: 'resolve', dedup_key: a.alert_id };
  const ev: Record<string, unknown> = {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: a.alert_id,
    payload: {
      // PagerDuty renders these as plain text; 1024 is its summary limit.
      summary: truncate(messageTitle(m), 1024),
      source: a.host ?? a.aid ?? source,
      severity: PAGERDUTY_SEVERITY[a.severity] ?? 'warning',
      timestamp: a.event_time,
      component: a.evidence_table ?? undefined,
      group: a.detection,
      class: a.tags.join(',') || undefined,
      custom_details: { ...alertJson(a), key_evidence: Object.fromEntries(keyEvidence(a)), count: m.count },
    },
  };
  if (m.link) ev.links = [{ href: m.link, text: 'Open in Talon' }];
  return ev;
}

export class PagerDutyDestination implements Destination {
  readonly type = 'pagerduty';
  readonly perAlert = true;
  constructor(
    readonly name: string,
    private readonly o: {
      url: string;
      routingKey: string;
      source?: string;
      timeoutMs?: number;
      concurrency?: number;
    },
  ) {}

  send(messages: NotifyMessage[]): Promise<DeliveryResult[]> {
    return mapLimit(messages, this.o.concurrency ?? 4, (m) =>
      postBody(this.o.url, JSON.stringify(pagerDutyEvent(m, this.o.routingKey, this.o.source)), {
        timeoutMs: this.o.timeoutMs,
      }),
    );
  }
}

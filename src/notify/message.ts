/**
 * Notification messages built from alerts: one per alert, a digest per (detection, window),
 * a resolve when an alert is closed; plus the few facts every channel shows.
 */
import { createHash } from 'node:crypto';
import { SEVERITIES, severityRank, type Alert } from '../alerts/alerts.js';
import type { NotifyMessage } from './destination.js';

/** Evidence fields shown first, when present (the ones an analyst triages on). */
const KEY_FIELDS = [
  'ioc',
  'ioc_type',
  'CommandLine',
  'DomainName',
  'ImageFileName',
  'FileName',
  'UserName',
  'RemoteAddressIP4',
  'RemotePort',
  'LocalAddressIP4',
  'LocalPort',
  'aip',
  'ComputerName',
  'SHA256HashData',
];

/** Up to `max` scalar evidence fields, the key ones first. */
export function keyEvidence(alert: Alert, max = 8): [string, string][] {
  const ev = alert.evidence;
  if (!ev || typeof ev !== 'object' || Array.isArray(ev)) {
    return ev === null || ev === undefined ? [] : [['evidence', String(ev)]];
  }
  const obj = ev as Record<string, unknown>;
  const scalar = (v: unknown) => v !== null && v !== undefined && typeof v !== 'object';
  const keys = [
    ...KEY_FIELDS.filter((k) => scalar(obj[k])),
    ...Object.keys(obj)
      .filter((k) => !KEY_FIELDS.includes(k) && scalar(obj[k]) && !k.startsWith('_'))
      .sort(),
  ];
  return keys.slice(0, max).map((k) => [k, String(obj[k])]);
}

export function alertMessage(alert: Alert, consoleUrl?: string): NotifyMessage {
  return {
    id: alert.alert_id,
    kind: 'alert',
    alerts: [alert],
    alertIds: [alert.alert_id],
    count: 1,
    detection: alert.detection,
    severity: alert.severity,
    link: alertLink(alert, consoleUrl),
  };
}

export function resolveMessage(alert: Alert, consoleUrl?: string): NotifyMessage {
  return { ...alertMessage(alert, consoleUrl), id: `resolve:${alert.alert_id}`, kind: 'resolve' };
}

/** A digest of several alerts of one detection (shows the first `maxItems`). */
export function digestMessage(alerts: Alert[], maxItems: number, consoleUrl?: string): NotifyMessage {
  if (alerts.length === 1) return alertMessage(alerts[0], consoleUrl);
  const ids = alerts.map((a) => a.alert_id);
  const hash = createHash('sha256').update(ids.join(',')).digest('hex').slice(0, 32);
  return {
    id: `digest:${hash}`,
    kind: 'digest',
    alerts: alerts.slice(0, Math.max(1, maxItems)),
    alertIds: ids,
    count: alerts.length,
    detection: alerts[0].detection,
    severity: maxSeverity(alerts),
    link: consoleUrl
      ? `${consoleUrl.replace(/\/+$/, '')}/alerts?detection=${encodeURIComponent(alerts[0].detection)}`
      : undefined,
  };
}

export function alertLink(alert: Alert, consoleUrl?: string): string | undefined {
  return consoleUrl
    ? `${consoleUrl.replace(/\/+$/, '')}/alerts/${encodeURIComponent(alert.alert_id)}`
    : undefined;
}

export function maxSeverity(alerts: Alert[]): Alert['severity'] {
  let best = 0;
  for (const a of alerts) best = Math.max(best, severityRank(a.severity));
  return SEVERITIES[best] ?? 'info';
}

/** The entity an alert is about (suppression key): host, else sensor id, else user. */
export function alertEntity(alert: Alert): string {
  return alert.host ?? alert.aid ?? alert.user ?? '';
}

/** One-line title: `[HIGH] Vulnerable service exposed — host-1` (or `12 × …` for digests). */
export function messageTitle(m: NotifyMessage): string {
  const a = m.alerts[0];
  const sev = m.severity.toUpperCase();
  if (m.kind === 'digest') return `[${sev}] ${m.count} × ${a.title}`;
  const who = a.host ?? a.aid ?? a.user;
  const prefix = m.kind === 'resolve' ? 'RESOLVED ' : '';
  return `${prefix}[${sev}] ${a.title}${who ? ` — ${who}` : ''}${m.count > 1 ? ` (×${m.count})` : ''}`;
}

/** The alert as plain JSON (machines' channels: webhook, Kafka, Splunk, file). */
export function alertJson(a: Alert): Record<string, unknown> {
  return {
    alert_id: a.alert_id,
    detection: a.detection,
    severity: a.severity,
    title: a.title,
    description: a.description,
    event_time: a.event_time,
    detected_at: a.detected_at,
    aid: a.aid,
    host: a.host,
    user: a.user,
    dedup_key: a.dedup_key,
    tags: a.tags,
    status: a.status,
    evidence_table: a.evidence_table,
    evidence_version: a.evidence_version,
    evidence: a.evidence,
  };
}

/** The message as plain JSON. */
export function messageJson(m: NotifyMessage): Record<string, unknown> {
  if (m.kind === 'digest') {
    return {
      kind: 'digest',
      id: m.id,
      detection: m.detection,
      severity: m.severity,
      count: m.count,
      alert_ids: m.alertIds,
      alerts: m.alerts.map(alertJson),
      ...(m.link ? { link: m.link } : {}),
    };
  }
  return {
    kind: m.kind,
    ...alertJson(m.alerts[0]),
    ...(m.count > 1 ? { count: m.count } : {}),
    ...(m.link ? { link: m.link } : {}),
  };
}

/** A sample alert for `talon notify test`, with hostile text in every field a host controls. */
export function sampleAlert(now = new Date()): Alert {
  const t = now.toISOString();
  return {
    alert_id: 'talon-test-' + now.getTime().toString(36),
    detection: 'talon_test',
    severity: 'high',
    title: 'Talon test notification',
    description: 'A sample alert sent by `talon notify test` <not a real detection>',
    event_time: t,
    detected_at: t,
    aid: '0123456789abcdef0123456789abcdef',
    host: 'test-host',
    user: 'analyst',
    dedup_key: 'test',
    evidence_table: null,
    evidence_version: null,
    evidence: {
      CommandLine: 'cmd.exe /c echo <!channel> *bold* <http://evil.example|click>',
      LocalPort: 3389,
    },
    tags: ['test'],
    status: 'open',
  };
}

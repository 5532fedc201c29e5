/**
 * Microsoft Teams workflow webhook ("Post to a channel when a webhook request is received"):
 * a message with one Adaptive Card attachment. Card text is a Markdown subset, so host
 * values go through teamsText (Markdown punctuation backslash-escaped, `<>&` as entities).
 */
import type { Destination, DeliveryResult, NotifyMessage } from '../destination.js';
import { teamsText, truncate } from '../escape.js';
import { postBody } from '../http.js';
import { keyEvidence, messageTitle } from '../message.js';
import { mapLimit } from '../limit.js';

const SEVERITY_COLOR: Record<string, string> = {
  critical: 'Attention',
  high: 'Attention',
  medium: 'Warning',
  low: 'Accent',
  info: 'Default',
};

export function teamsPayload(m: NotifyMessage): Record<string, unknown> {
  const body: Record<string, unknown>[] = [
    {
      type: 'TextBlock',
      size: 'Large',
      weight: 'Bolder',
      wrap: true,
      color: SEVERITY_COLOR[m.severity] ?? 'Default',
      text: teamsText(messageTitle(m)),
    },
  ];
  for (const a of m.alerts) {
    body.push({
      type: 'FactSet',
      facts: [
        { title: 'Severity', value: teamsText(a.severity) },
        { title: 'Detection', value: teamsText(a.detection) },
        { title: 'Host', value: teamsText(a.host ?? a.aid ?? '-') },
        { title: 'User', value: teamsText(a.user ?? '-') },
        { title: 'Event time', value: teamsText(a.event_time) },
        ...keyEvidence(a, 6).map(([k, v]) => ({ title: teamsText(k), value: teamsText(truncate(v, 400)) })),
      ],
    });
    if (a.description)
      body.push({ type: 'TextBlock', wrap: true, text: teamsText(truncate(a.description, 1000)) });
  }
  if (m.count > m.alerts.length)
    body.push({ type: 'TextBlock', text: `…and ${m.count - m.alerts.length} more`, isSubtle: true });
  const card: Record<string, unknown> = {
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    type: 'AdaptiveCard',
    version: '1.4',
    body,
  };
  if (m.link) card.actions = [{ type: 'Action.OpenUrl', title: 'Open in Talon', url: m.link }];
  return {
    type: 'message',
    attachments: [
      { contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null, content: card },
    ],
  };
}

export class TeamsDestination implements Destination {
  readonly type = 'teams';
  readonly perAlert = false;
  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly timeoutMs?: number,
  ) {}

  send(messages: NotifyMessage[]): Promise<DeliveryResult[]> {
    return mapLimit(messages, 2, (m) =>
      postBody(this.url, JSON.stringify(teamsPayload(m)), { timeoutMs: this.timeoutMs }),
    );
  }
}

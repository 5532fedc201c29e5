/**
 * Slack incoming webhook, Block Kit: a header with the title, severity/host/user/time fields,
 * the key evidence fields, and a console link button when configured. Every host-controlled
 * value goes through slackText/slackCode (./escape.ts), so `<!channel>`, `<@U…>` and
 * `<http://evil|click>` arrive as text. `text` is the notification fallback.
 */
import type { Destination, DeliveryResult, NotifyMessage } from '../destination.js';
import { slackCode, slackText, truncate } from '../escape.js';
import { postBody } from '../http.js';
import { keyEvidence, messageTitle } from '../message.js';
import { mapLimit } from '../limit.js';
import type { Alert } from '../../alerts/alerts.js';

const SEVERITY_EMOJI: Record<string, string> = {
  critical: ':red_circle:',
  high: ':large_orange_circle:',
  medium: ':large_yellow_circle:',
  low: ':large_blue_circle:',
  info: ':white_circle:',
};

/** Slack's limits: header text 150 chars, section text 3000, field 2000. */
export function slackPayload(m: NotifyMessage): Record<string, unknown> {
  const title = messageTitle(m);
  // Header blocks are plain_text: no mrkdwn is interpreted there, so no escaping is needed.
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(title, 150), emoji: false } },
  ];
  const facts = (a: Alert) => [
    { type: 'mrkdwn', text: `*Severity*\n${SEVERITY_EMOJI[a.severity] ?? ''} ${slackText(a.severity)}` },
    { type: 'mrkdwn', text: `*Detection*\n${slackText(a.detection)}` },
    { type: 'mrkdwn', text: `*Host*\n${slackText(a.host ?? a.aid ?? '-')}` },
    { type: 'mrkdwn', text: `*User*\n${slackText(a.user ?? '-')}` },
    { type: 'mrkdwn', text: `*Event time*\n${slackText(a.event_time)}` },
    { type: 'mrkdwn', text: `*Alert id*\n${slackCode(a.alert_id)}` },
  ];
  const evidence = (a: Alert) =>
    keyEvidence(a, 6)
      .map(([k, v]) => `*${slackText(k)}*: \`${slackCode(truncate(v, 400))}\``)
      .join('\n');
  if (m.kind === 'digest') {
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: `*${m.count}* alerts of detection *${slackText(m.detection)}*` },
    });
    for (const a of m.alerts) {
      blocks.push({
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: truncate(
            `• ${slackText(a.event_time)} — *${slackText(a.host ?? a.aid ?? '-')}* ${slackText(a.user ?? '')}\n${slackText(a.description)}\n${evidence(a)}`,
            2900,
          ),
        },
      });
    }
    if (m.count > m.alerts.length) {
      blocks.push({
        type: 'context',
        elements: [{ type: 'mrkdwn', text: `…and ${m.count - m.alerts.length} more` }],
      });
    }
  } else {
    const a = m.alerts[0];
    blocks.push({ type: 'section', fields: facts(a) });
    if (a.description)
      blocks.push({
        type: 'section',
        text: { type: 'mrkdwn', text: truncate(slackText(a.description), 2900) },
      });
    const ev = evidence(a);
    if (ev) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: truncate(ev, 2900) } });
    if (m.count > 1) {
      blocks.push({
        type: 'context',
        elements: [
          { type: 'mrkdwn', text: `${m.count - 1} repeat(s) of this detection on this host folded in` },
        ],
      });
    }
  }
  if (m.link) {
    blocks.push({
      type: 'actions',
      elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open in Talon' }, url: m.link }],
    });
  }
  return { text: slackText(title), blocks };
}

export class SlackDestination implements Destination {
  readonly type = 'slack';
  readonly perAlert = false;
  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly timeoutMs?: number,
  ) {}

  send(messages: NotifyMessage[]): Promise<DeliveryResult[]> {
    // Slack's incoming webhooks allow about one message per second per webhook; keep it serial.
    return mapLimit(messages, 1, (m) =>
      postBody(this.url, JSON.stringify(slackPayload(m)), { timeoutMs: this.timeoutMs }),
    );
  }
}

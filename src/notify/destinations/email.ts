/**
 * Email over SMTP (nodemailer): a text part and an HTML part, every host value HTML-escaped.
 * STARTTLS is used when the server offers it (`require_tls` refuses to send without it,
 * `ignore_tls` never uses it), `secure` is implicit TLS (port 465).
 * SMTP replies classify the attempt: 2xx ok, 4xx retry later, 5xx fail at once.
 */
import nodemailer from 'nodemailer';
import type { Transporter } from 'nodemailer';
import type { Destination, DeliveryResult, NotifyMessage } from '../destination.js';
import { failResult, okResult } from '../destination.js';
import { htmlText } from '../escape.js';
import { keyEvidence, messageTitle } from '../message.js';

export interface EmailOptions {
  name: string;
  url?: string;
  host?: string;
  port?: number;
  secure?: boolean;
  requireTls?: boolean;
  ignoreTls?: boolean;
  ca?: string;
  rejectUnauthorized?: boolean;
  auth?: { user: string; pass: string };
  from: string;
  to: string | string[];
  subjectPrefix?: string;
  timeoutMs?: number;
}

export function emailText(m: NotifyMessage): string {
  const lines = [messageTitle(m), ''];
  if (m.kind === 'digest') lines.push(`${m.count} alerts of detection ${m.detection}`, '');
  for (const a of m.alerts) {
    lines.push(
      `Severity:   ${a.severity}`,
      `Detection:  ${a.detection}`,
      `Host:       ${a.host ?? a.aid ?? '-'}`,
      `User:       ${a.user ?? '-'}`,
      `Event time: ${a.event_time}`,
      `Alert id:   ${a.alert_id}`,
      '',
      a.description,
      '',
      ...keyEvidence(a).map(([k, v]) => `  ${k}: ${v}`),
      '',
    );
  }
  if (m.count > m.alerts.length) lines.push(`…and ${m.count - m.alerts.length} more`);
  if (m.link) lines.push(m.link);
  return lines.join('\n');
}

export function emailHtml(m: NotifyMessage): string {
  const row = (k: string, v: unknown) =>
    `<tr><th align="left">${htmlText(k)}</th><td>${htmlText(v)}</td></tr>`;
  const parts = [`<h2>${htmlText(messageTitle(m))}</h2>`];
  if (m.kind === 'digest')
    parts.push(`<p>${m.count} alerts of detection <b>${htmlText(m.detection)}</b></p>`);
  for (const a of m.alerts) {
    parts.push(
      '<table>',
      row('Severity', a.severity),
      row('Detection', a.detection),
      row('Host', a.host ?? a.aid ?? '-'),
      row('User', a.user ?? '-'),
      row('Event time', a.event_time),
      row('Alert id', a.alert_id),
      ...keyEvidence(a).map(([k, v]) => row(k, v)),
      '</table>',
      `<p>${htmlText(a.description)}</p>`,
    );
  }
  if (m.count > m.alerts.length) parts.push(`<p>…and ${m.count - m.alerts.length} more</p>`);
  if (m.link) parts.push(`<p><a href="${htmlText(m.link)}">Open in Talon</a></p>`);
  return `<!doctype html><html><body>${parts.join('\n')}</body></html>`;
}

export class EmailDestination implements Destination {
  readonly type = 'email';
  readonly perAlert = false;
  private transport: Transporter | undefined;
  constructor(private readonly o: EmailOptions) {}
  get name(): string {
    return this.o.name;
  }

  private transporter(): Transporter {
    if (!this.transport) {
      const t = this.o.timeoutMs ?? 10_000;
      const common = {
        connectionTimeout: t,
        greetingTimeout: t,
        socketTimeout: t,
        requireTLS: this.o.requireTls,
        ignoreTLS: this.o.ignoreTls,
        tls: { ca: this.o.ca, rejectUnauthorized: this.o.rejectUnauthorized ?? true },
      };
      this.transport = this.o.url
        ? nodemailer.createTransport({ url: this.o.url, ...common })
        : nodemailer.createTransport({
            host: this.o.host ?? '127.0.0.1',
            port: this.o.port ?? (this.o.secure ? 465 : 587),
            secure: this.o.secure ?? false,
            auth: this.o.auth,
            ...common,
          });
    }
    return this.transport;
  }

  async send(messages: NotifyMessage[]): Promise<DeliveryResult[]> {
    const out: DeliveryResult[] = [];
    for (const m of messages) {
      try {
        const info = await this.transporter().sendMail({
          from: this.o.from,
          to: this.o.to,
          subject: `${this.o.subjectPrefix ?? '[Talon]'} ${messageTitle(m)}`.replace(/[\r\n]+/g, ' '),
          text: emailText(m),
          html: emailHtml(m),
          headers: { 'X-Talon-Message-Id': m.id },
        });
        out.push(okResult({ reply: String(info.response ?? '') }));
      } catch (err) {
        const code = (err as { responseCode?: number }).responseCode;
        const reply = (err as { response?: string }).response;
        // SMTP 5xx is permanent (bad recipient, refused); 4xx and connection trouble are worth retrying.
        out.push(failResult(err, !(code && code >= 500), { reply }));
      }
    }
    return out;
  }

  async close(): Promise<void> {
    this.transport?.close();
    this.transport = undefined;
  }
}

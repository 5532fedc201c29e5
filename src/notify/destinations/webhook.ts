/**
 * Generic webhook: the message as JSON, POSTed with custom headers. With a `secret`, the
 * header `X-Talon-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body bytes, so the
 * receiver can verify origin and integrity before parsing.
 */
import { createHmac } from 'node:crypto';
import type { Destination, DeliveryResult, NotifyMessage } from '../destination.js';
import { postBody } from '../http.js';
import { messageJson } from '../message.js';
import { mapLimit } from '../limit.js';

export interface WebhookOptions {
  name: string;
  url: string;
  headers?: Record<string, string>;
  secret?: string;
  signatureHeader?: string;
  timeoutMs?: number;
  concurrency?: number;
}

export function webhookSignature(secret: string, body: string | Buffer): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

export class WebhookDestination implements Destination {
  readonly type = 'webhook';
  readonly perAlert = false;
  constructor(private readonly o: WebhookOptions) {}
  get name(): string {
    return this.o.name;
  }

  send(messages: NotifyMessage[]): Promise<DeliveryResult[]> {
    return mapLimit(messages, this.o.concurrency ?? 8, (m) => {
      const body = JSON.stringify({ source: 'talon', ...messageJson(m) });
      const headers: Record<string, string> = { ...(this.o.headers ?? {}), 'x-talon-message-id': m.id };
      if (this.o.secret)
        headers[this.o.signatureHeader ?? 'X-Talon-Signature'] = webhookSignature(this.o.secret, body);
      return postBody(this.o.url, body, { headers, timeoutMs: this.o.timeoutMs });
    });
  }
}

/**
 * Splunk HTTP Event Collector: `POST /services/collector/event` with `Authorization: Splunk
 * <token>`; several events per request as concatenated JSON objects (HEC's batch format).
 * Each event: `{time (epoch s), host, source, sourcetype, index?, event}`.
 */
import type { Destination, DeliveryResult, NotifyMessage } from '../destination.js';
import { postBody } from '../http.js';
import { messageJson } from '../message.js';

export function hecUrl(url: string): string {
  return /\/services\/collector(\/event)?\/?$/.test(url)
    ? url.replace(/\/collector\/?$/, '/collector/event')
    : url.replace(/\/+$/, '') + '/services/collector/event';
}

export function hecEvent(
  m: NotifyMessage,
  o: { index?: string; sourcetype?: string; source?: string },
): Record<string, unknown> {
  const a = m.alerts[0];
  const t = Date.parse(a.event_time);
  return {
    time: Number.isNaN(t) ? Date.now() / 1000 : t / 1000,
    host: a.host ?? a.aid ?? undefined,
    source: o.source ?? 'talon',
    sourcetype: o.sourcetype ?? 'talon:alert',
    ...(o.index ? { index: o.index } : {}),
    event: messageJson(m),
  };
}

export class SplunkDestination implements Destination {
  readonly type = 'splunk';
  readonly perAlert = true;
  private readonly url: string;
  constructor(
    readonly name: string,
    private readonly o: {
      url: string;
      token: string;
      index?: string;
      sourcetype?: string;
      source?: string;
      batchSize?: number;
      timeoutMs?: number;
    },
  ) {
    this.url = hecUrl(o.url);
  }

  async send(messages: NotifyMessage[]): Promise<DeliveryResult[]> {
    const out: DeliveryResult[] = [];
    const size = this.o.batchSize ?? 100;
    for (let i = 0; i < messages.length; i += size) {
      const chunk = messages.slice(i, i + size);
      const body = chunk.map((m) => JSON.stringify(hecEvent(m, this.o))).join('\n');
      const r = await postBody(this.url, body, {
        headers: { authorization: `Splunk ${this.o.token}` },
        timeoutMs: this.o.timeoutMs,
      });
      for (let j = 0; j < chunk.length; j++) out.push(r);
    }
    return out;
  }
}

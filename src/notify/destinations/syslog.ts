/**
 * Syslog, RFC 5424, over UDP (one message per datagram, RFC 5426), TCP or TLS (octet-counting
 * framing `LEN SP MSG`, RFC 6587 / RFC 5425). The body is the alert as JSON or as ArcSight
 * CEF; the alert id and detection also travel as structured data `[talon@32473 …]`.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Destination, DeliveryResult, NotifyMessage } from '../destination.js';
import { failResult, okResult } from '../destination.js';
import { cefHeader, cefValue, sdValue } from '../escape.js';
import { keyEvidence, messageJson, messageTitle } from '../message.js';

/** Talon severity → syslog severity (2 crit, 3 err, 4 warning, 5 notice, 6 info). */
const SYSLOG_SEVERITY: Record<string, number> = { critical: 2, high: 3, medium: 4, low: 5, info: 6 };
/** Talon severity → CEF 0–10. */
const CEF_SEVERITY: Record<string, number> = { critical: 10, high: 8, medium: 5, low: 3, info: 1 };
/** Private enterprise number used in the SD-ID (example range, RFC 5612). */
const SD_ID = 'talon@32473';

export interface SyslogOptions {
  name: string;
  host: string;
  port: number;
  protocol: 'udp' | 'tcp' | 'tls';
  format: 'json' | 'cef';
  facility: number;
  appName: string;
  timeoutMs?: number;
  ca?: string;
  rejectUnauthorized?: boolean;
  version?: string;
}

/** PRINTUSASCII without spaces, as header fields require (RFC 5424 §6). */
function headerField(s: string, max: number): string {
  const t = s.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return t || '-';
}

export function cefMessage(m: NotifyMessage, version = '0'): string {
  const a = m.alerts[0];
  const ext: [string, unknown][] = [
    ['rt', Date.parse(a.event_time) || ''],
    ['externalId', a.alert_id],
    ['dvchost', a.host ?? ''],
    ['duser', a.user ?? ''],
    ['msg', a.description],
    ['cat', a.tags.join(',')],
    ['cnt', m.count],
    ['cs1Label', 'aid'],
    ['cs1', a.aid ?? ''],
  ];
  let i = 2;
  for (const [k, v] of keyEvidence(a, 4)) {
    ext.push([`cs${i}Label`, k], [`cs${i}`, v]);
    i++;
  }
  const extText = ext
    .filter(([, v]) => v !== '' && v !== null && v !== undefined)
    .map(([k, v]) => `${k}=${cefValue(v)}`)
    .join(' ');
  return [
    'CEF:0',
    'Talon',
    'Talon',
    cefHeader(version),
    cefHeader(a.detection),
    cefHeader(messageTitle(m)),
    String(CEF_SEVERITY[m.severity] ?? 5),
    extText,
  ].join('|');
}

export function syslogLine(
  m: NotifyMessage,
  o: Pick<SyslogOptions, 'facility' | 'appName' | 'format' | 'version'>,
  hostname = os.hostname(),
): string {
  const a = m.alerts[0];
  const pri = o.facility * 8 + (SYSLOG_SEVERITY[m.severity] ?? 4);
  const ts = new Date(Date.parse(a.detected_at) || Date.now()).toISOString();
  const sd = `[${SD_ID} alert_id="${sdValue(a.alert_id)}" detection="${sdValue(a.detection)}" severity="${sdValue(m.severity)}"${m.kind === 'resolve' ? ' action="resolve"' : ''}]`;
  const body = o.format === 'cef' ? cefMessage(m, o.version) : JSON.stringify(messageJson(m));
  return `<${pri}>1 ${ts} ${headerField(hostname, 255)} ${headerField(o.appName, 48)} ${process.pid} ${headerField(a.detection, 32)} ${sd} ${body}`;
}

export class SyslogDestination implements Destination {
  readonly type = 'syslog';
  readonly perAlert = true;
  constructor(private readonly o: SyslogOptions) {}
  get name(): string {
    return this.o.name;
  }

  async send(messages: NotifyMessage[]): Promise<DeliveryResult[]> {
    const lines = messages.map((m) => syslogLine(m, this.o));
    try {
      if (this.o.protocol === 'udp') await this.sendUdp(lines);
      else await this.sendStream(lines);
      return lines.map((l) => okResult({ reply: `${Buffer.byteLength(l)} bytes via ${this.o.protocol}` }));
    } catch (err) {
      return lines.map(() => failResult(err, true));
    }
  }

  private sendUdp(lines: string[]): Promise<void> {
    const sock = dgram.createSocket(net.isIPv6(this.o.host) ? 'udp6' : 'udp4');
    return new Promise<void>((resolve, reject) => {
      let left = lines.length;
      sock.once('error', (e) => {
        sock.close();
        reject(e);
      });
      if (left === 0) return resolve();
      for (const l of lines) {
        sock.send(Buffer.from(l), this.o.port, this.o.host, (err) => {
          if (err) return reject(err);
          if (--left === 0) {
            sock.close();
            resolve();
          }
        });
      }
    });
  }

  private sendStream(lines: string[]): Promise<void> {
    const framed = lines.map((l) => `${Buffer.byteLength(l)} ${l}`).join('');
    return new Promise<void>((resolve, reject) => {
      const onConnect = () => {
        sock.end(framed, () => resolve());
      };
      const sock =
        this.o.protocol === 'tls'
          ? tls.connect(
              {
                host: this.o.host,
                port: this.o.port,
                ca: this.o.ca,
                rejectUnauthorized: this.o.rejectUnauthorized ?? true,
                servername: net.isIP(this.o.host) ? undefined : this.o.host,
              },
              onConnect,
            )
          : net.connect({ host: this.o.host, port: this.o.port }, onConnect);
      sock.setTimeout(this.o.timeoutMs ?? 10_000, () => sock.destroy(new Error('syslog: timeout')));
      sock.once('error', reject);
    });
  }
}

export function readCa(file: string | undefined): string | undefined {
  return file ? readFileSync(file, 'utf8') : undefined;
}

/** Builds destinations from their configuration. */
import { parseDuration } from '../../engine/duration.js';
import type { Destination } from '../destination.js';
import type { DestinationConfig } from '../settings.js';
import { EmailDestination } from './email.js';
import { FileDestination } from './file.js';
import { KafkaDestination } from './kafka.js';
import { PagerDutyDestination } from './pagerduty.js';
import { SlackDestination } from './slack.js';
import { SplunkDestination } from './splunk.js';
import { readCa, SyslogDestination } from './syslog.js';
import { TeamsDestination } from './teams.js';
import { WebhookDestination } from './webhook.js';

const SYSLOG_PORTS = { udp: 514, tcp: 601, tls: 6514 } as const;

export function createDestination(
  c: DestinationConfig,
  opts: { concurrency?: number; version?: string } = {},
): Destination {
  const timeoutMs = parseDuration(c.timeout);
  switch (c.type) {
    case 'webhook':
      return new WebhookDestination({
        name: c.name,
        url: c.url,
        headers: c.headers,
        secret: c.secret,
        signatureHeader: c.signature_header,
        timeoutMs,
        concurrency: opts.concurrency,
      });
    case 'slack':
      return new SlackDestination(c.name, c.url, timeoutMs);
    case 'teams':
      return new TeamsDestination(c.name, c.url, timeoutMs);
    case 'pagerduty':
      return new PagerDutyDestination(c.name, {
        url: c.url,
        routingKey: c.routing_key,
        source: c.source,
        timeoutMs,
        concurrency: opts.concurrency,
      });
    case 'splunk':
      return new SplunkDestination(c.name, {
        url: c.url,
        token: c.token,
        index: c.index,
        sourcetype: c.sourcetype,
        source: c.source,
        batchSize: c.batch_size,
        timeoutMs,
      });
    case 'email':
      return new EmailDestination({
        name: c.name,
        url: c.url,
        host: c.host,
        port: c.port,
        secure: c.secure,
        requireTls: c.require_tls,
        ignoreTls: c.ignore_tls,
        ca: readCa(c.tls?.ca_file),
        rejectUnauthorized: c.tls?.reject_unauthorized,
        auth: c.auth,
        from: c.from,
        to: c.to,
        subjectPrefix: c.subject_prefix,
        timeoutMs,
      });
    case 'syslog': {
      let { host, protocol } = c;
      let port = c.port ?? SYSLOG_PORTS[c.protocol];
      if (c.url) {
        const u = new URL(c.url);
        const p = u.protocol.replace(/:$/, '');
        if (p !== 'udp' && p !== 'tcp' && p !== 'tls')
          throw new Error(`notify.${c.name}: syslog url must be udp://, tcp:// or tls://`);
        protocol = p;
        host = u.hostname.replace(/^\[|\]$/g, '');
        port = u.port ? Number(u.port) : SYSLOG_PORTS[p];
      }
      return new SyslogDestination({
        name: c.name,
        host,
        port,
        protocol,
        format: c.format,
        facility: c.facility,
        appName: c.app_name,
        timeoutMs,
        ca: readCa(c.tls?.ca_file),
        rejectUnauthorized: c.tls?.reject_unauthorized,
        version: opts.version,
      });
    }
    case 'file':
      return new FileDestination(c.name, c.path);
    case 'kafka': {
      const brokers = c.url
        ? c.url
            .split(',')
            .map((s) => s.trim().replace(/^[a-z]+:\/\//, ''))
            .filter(Boolean)
        : c.brokers;
      if (brokers.length === 0) throw new Error(`notify.${c.name}: kafka needs brokers (or url)`);
      return new KafkaDestination({
        name: c.name,
        brokers,
        topic: c.topic,
        clientId: c.client_id,
        ssl: c.ssl,
        ca: readCa(c.tls?.ca_file),
        rejectUnauthorized: c.tls?.reject_unauthorized,
        sasl: c.sasl,
        timeoutMs,
      });
    }
  }
}

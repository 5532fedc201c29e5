/**
 * The `notify:` section of talon.yaml: destinations, routes, noise control, retries.
 * Every default is stated next to its option. Secrets come from `${ENV}` references, which
 * the config loader substitutes. Every destination's endpoint can be overridden by `url`
 * (proxies, tests).
 */
import { z } from 'zod';
import { parseDuration } from '../engine/duration.js';

const duration = z.union([z.string(), z.number()]);

function validDuration(d: string | number): boolean {
  try {
    parseDuration(d);
    return true;
  } catch {
    return false;
  }
}

const throttle = z
  .object({
    /** At most this many messages to the destination per `period`; excess alerts fold into one digest. */
    max_messages: z.number().int().positive(),
    period: duration.default('1m'),
  })
  .strict();

const common = {
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . -'),
  /** Per attempt. */
  timeout: duration.default('10s'),
  throttle: throttle.optional(),
  /** Overrides notify.retry.max_attempts for this destination. */
  max_attempts: z.number().int().positive().optional(),
};

const tls = z
  .object({
    /** PEM file of the CA to trust (self-signed / private CA). */
    ca_file: z.string().optional(),
    reject_unauthorized: z.boolean().default(true),
  })
  .strict();

export const destinationSchema = z.discriminatedUnion('type', [
  z
    .object({
      ...common,
      type: z.literal('webhook'),
      url: z.string(),
      headers: z.record(z.string(), z.string()).default({}),
      /** HMAC-SHA256 key: the header carries `sha256=<hex of HMAC(secret, raw body)>`. */
      secret: z.string().optional(),
      signature_header: z.string().default('X-Talon-Signature'),
    })
    .strict(),
  z.object({ ...common, type: z.literal('slack'), url: z.string() }).strict(),
  z.object({ ...common, type: z.literal('teams'), url: z.string() }).strict(),
  z
    .object({
      ...common,
      type: z.literal('pagerduty'),
      routing_key: z.string(),
      url: z.string().default('https://events.pagerduty.com/v2/enqueue'),
      /** Sent as payload.source when the alert has no host. */
      source: z.string().default('talon'),
      /** Send `resolve` when an alert's status becomes closed. */
      resolve: z.boolean().default(true),
    })
    .strict(),
  z
    .object({
      ...common,
      type: z.literal('email'),
      /** `smtp://user:pass@host:587` or `smtps://…:465`; instead of host/port/secure/auth. */
      url: z.string().optional(),
      host: z.string().optional(),
      port: z.number().int().positive().optional(),
      /** Implicit TLS (port 465). false: plain, upgraded by STARTTLS when offered. */
      secure: z.boolean().default(false),
      /** Refuse to send unless STARTTLS succeeds. */
      require_tls: z.boolean().default(false),
      /** Never use STARTTLS (plain text on the wire). */
      ignore_tls: z.boolean().default(false),
      tls: tls.optional(),
      auth: z.object({ user: z.string(), pass: z.string() }).strict().optional(),
      from: z.string(),
      to: z.union([z.string(), z.array(z.string())]),
      subject_prefix: z.string().default('[Talon]'),
    })
    .strict(),
  z
    .object({
      ...common,
      type: z.literal('splunk'),
      /** HEC base (`https://splunk:8088`) or full URL of `/services/collector/event`. */
      url: z.string(),
      token: z.string(),
      index: z.string().optional(),
      sourcetype: z.string().default('talon:alert'),
      source: z.string().default('talon'),
      /** Events per POST. */
      batch_size: z.number().int().positive().default(100),
    })
    .strict(),
  z
    .object({
      ...common,
      type: z.literal('syslog'),
      /** `udp://host:514`, `tcp://host:601`, `tls://host:6514`; instead of host/port/protocol. */
      url: z.string().optional(),
      host: z.string().default('127.0.0.1'),
      port: z.number().int().positive().optional(),
      protocol: z.enum(['udp', 'tcp', 'tls']).default('udp'),
      tls: tls.optional(),
      /** Message body: JSON of the alert, or ArcSight CEF. */
      format: z.enum(['json', 'cef']).default('json'),
      /** Syslog facility number (16 = local0). */
      facility: z.number().int().min(0).max(23).default(16),
      app_name: z.string().default('talon'),
    })
    .strict(),
  z
    .object({
      ...common,
      type: z.literal('file'),
      /** NDJSON file appended to; `-` = stdout. */
      path: z.string().default('-'),
    })
    .strict(),
  z
    .object({
      ...common,
      type: z.literal('kafka'),
      /** Comma-separated bootstrap servers; overrides `brokers`. */
      url: z.string().optional(),
      brokers: z.array(z.string()).default([]),
      topic: z.string(),
      client_id: z.string().default('talon-notify'),
      /** TLS to the brokers (Event Hubs: true). */
      ssl: z.boolean().default(false),
      tls: tls.optional(),
      sasl: z
        .object({
          mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
          username: z.string(),
          password: z.string(),
        })
        .strict()
        .optional(),
    })
    .strict(),
]);

export type DestinationConfig = z.infer<typeof destinationSchema>;

export const routeSchema = z
  .object({
    /** Every given criterion must hold; within a list any value matches. Empty match = all alerts. */
    match: z
      .object({
        severity: z.array(z.enum(['info', 'low', 'medium', 'high', 'critical'])).optional(),
        detection: z.array(z.string()).optional(),
        /** Any of these tags (e.g. ATT&CK ids). */
        tags: z.array(z.string()).optional(),
      })
      .strict()
      .default({}),
    to: z.array(z.string()).min(1),
  })
  .strict();

export type RouteConfig = z.infer<typeof routeSchema>;

export const notifySchema = z
  .object({
    destinations: z.array(destinationSchema).default([]),
    /** No routes: every alert goes to every destination. */
    routes: z.array(routeSchema).default([]),
    /** Base URL of the web console; messages link to `<console_url>/alerts/<id>`. */
    console_url: z.string().optional(),
    grouping: z
      .object({
        /** Alerts of one detection within this window become one digest; 0 = off. */
        window: duration.default(0),
        /** Alerts listed in a digest (the count covers all). */
        max_items: z.number().int().positive().default(10),
      })
      .strict()
      .default({ window: 0, max_items: 10 }),
    suppression: z
      .object({
        /** Repeats of one (detection, entity) within this window fold into the first; 0 = off. */
        window: duration.default(0),
      })
      .strict()
      .default({ window: 0 }),
    retry: z
      .object({
        max_attempts: z.number().int().positive().default(5),
        initial_backoff: duration.default('1s'),
        max_backoff: duration.default('1m'),
      })
      .strict()
      .default({ max_attempts: 5, initial_backoff: '1s', max_backoff: '1m' }),
    /** Deliveries are recorded every this many messages per destination (bounds resends after a crash). */
    record_every: z.number().int().positive().default(50),
    /** Messages in flight per destination. */
    concurrency: z.number().int().positive().default(8),
    /** Continuous trigger: how often the alerts table's next commit is looked for. */
    poll_ms: z.number().int().positive().default(500),
    /**
     * Settled delivery history (pairs sent, failed, dead-lettered or suppressed) older than
     * this is deleted from `deliveries`, at most once an hour; 0 = keep forever. Pending and
     * retrying deliveries are never removed.
     */
    deliveries_retention: duration
      .default('30d')
      .refine((d) => validDuration(d), 'expected a duration such as 30d, 12h or 0 (keep forever)'),
  })
  .strict();

export type NotifyConfig = z.infer<typeof notifySchema>;

export const NOTIFY_DEFAULTS: NotifyConfig = notifySchema.parse({});

/** Wire formats of the HTTP destinations, checked on a recording server on 127.0.0.1. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { HttpReceiver } from '../../testing/http-receiver.js';
import { makeAlert } from '../test-support.js';
import { alertMessage, digestMessage } from '../message.js';
import { WebhookDestination } from './webhook.js';
import { SlackDestination } from './slack.js';
import { TeamsDestination } from './teams.js';
import { PagerDutyDestination } from './pagerduty.js';
import { SplunkDestination } from './splunk.js';
import { resolveMessage } from '../message.js';

/** Host values an attacker controls, aimed at each channel's markup. */
const hostile = makeAlert(1, {
  host: '<!channel>',
  user: '<@U024BE7LH> *admin*',
  description:
    'cmd /c <http://evil.example|click here> & <script>alert(1)</script> `rm -rf` [x](http://evil.example)',
  evidence: { CommandLine: 'powershell -enc <!here> <http://evil|click>', DomainName: 'evil.example' },
});

function allStrings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) allStrings(x, out);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) allStrings(x, out);
  return out;
}

test('webhook: JSON POST with custom headers and an HMAC-SHA256 signature the receiver can verify', async () => {
  const rx = await HttpReceiver.start();
  try {
    const d = new WebhookDestination({
      name: 'hook',
      url: rx.url('/in'),
      headers: { 'X-Tenant': 'acme' },
      secret: 's3cret',
    });
    const [r] = await d.send([alertMessage(hostile)]);
    assert.equal(r.ok, true);
    const req = rx.requests[0];
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/in');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['x-tenant'], 'acme');
    const sig = String(req.headers['x-talon-signature']);
    assert.match(sig, /^sha256=[0-9a-f]{64}$/);
    const expected = Buffer.from('sha256=' + createHmac('sha256', 's3cret').update(req.body).digest('hex'));
    assert.ok(timingSafeEqual(Buffer.from(sig), expected));
    // A tampered body no longer matches.
    const tampered = createHmac('sha256', 's3cret')
      .update(Buffer.concat([req.body, Buffer.from(' ')]))
      .digest('hex');
    assert.notEqual(sig, 'sha256=' + tampered);
    const body = JSON.parse(req.text);
    assert.equal(body.alert_id, hostile.alert_id);
    assert.equal(body.host, '<!channel>', 'JSON carries the raw value; JSON encoding is its escaping');
  } finally {
    await rx.close();
  }
});

test('Slack: Block Kit with title, severity, host, user, time, evidence and link; mentions and links are neutralised', async () => {
  const rx = await HttpReceiver.start();
  try {
    const d = new SlackDestination('slack', rx.url('/services/T/B/X'));
    const [r] = await d.send([alertMessage(hostile, 'https://talon.example')]);
    assert.equal(r.ok, true);
    const body = JSON.parse(rx.requests[0].text) as { text: string; blocks: Record<string, unknown>[] };
    assert.equal(body.blocks[0].type, 'header');
    const texts = allStrings(body.blocks).join('\n');
    for (const field of ['*Severity*', '*Host*', '*User*', '*Event time*', 'CommandLine', 'DomainName'])
      assert.ok(texts.includes(field), field);
    // No raw '<' survives in mrkdwn text: `<!channel>`, `<@U…>`, `<http://…|…>` cannot work.
    const mrkdwn = allStrings(body.blocks.slice(1)).filter((t) => !t.startsWith('http'));
    for (const t of mrkdwn) assert.ok(!/[<>]/.test(t), `unescaped markup in ${JSON.stringify(t)}`);
    assert.ok(texts.includes('&lt;!channel&gt;'));
    assert.ok(texts.includes('&lt;http://evil.example|click here&gt; &amp; &lt;script&gt;'));
    assert.ok(!/(^|[^\u200b])\*admin\*/.test(texts), 'bold formatting from the user name is broken up');
    assert.ok(!body.text.includes('<'), 'fallback text escaped too');
    const actions = body.blocks.find((b) => b.type === 'actions') as { elements: { url: string }[] };
    assert.equal(actions.elements[0].url, `https://talon.example/alerts/${hostile.alert_id}`);
  } finally {
    await rx.close();
  }
});

test('Slack digest: count and first N items', async () => {
  const rx = await HttpReceiver.start();
  try {
    const alerts = Array.from({ length: 5 }, (_, i) => makeAlert(i));
    await new SlackDestination('slack', rx.url('/')).send([digestMessage(alerts, 2)]);
    const body = rx.json<{ blocks: { type: string }[] }>()[0];
    const texts = allStrings(body.blocks).join('\n');
    assert.ok(texts.includes('*5* alerts'));
    assert.ok(texts.includes('host-0') && texts.includes('host-1') && !texts.includes('host-4'));
    assert.ok(texts.includes('and 3 more'));
  } finally {
    await rx.close();
  }
});

test('Teams: an Adaptive Card attachment with facts; Markdown and HTML in host values are escaped', async () => {
  const rx = await HttpReceiver.start();
  try {
    const [r] = await new TeamsDestination('teams', rx.url('/workflows/x')).send([
      alertMessage(hostile, 'https://talon.example'),
    ]);
    assert.equal(r.ok, true);
    const body = JSON.parse(rx.requests[0].text);
    assert.equal(body.type, 'message');
    const att = body.attachments[0];
    assert.equal(att.contentType, 'application/vnd.microsoft.card.adaptive');
    assert.equal(att.content.type, 'AdaptiveCard');
    const facts = att.content.body.find((b: { type: string }) => b.type === 'FactSet').facts as {
      title: string;
      value: string;
    }[];
    assert.deepEqual(
      facts.slice(0, 4).map((f) => f.title),
      ['Severity', 'Detection', 'Host', 'User'],
    );
    const texts = allStrings(att.content.body).join('\n');
    assert.ok(!texts.includes('<script>') && texts.includes('&lt;script&gt;'));
    assert.ok(!texts.includes('[x](http'), 'markdown link syntax is escaped');
    assert.ok(texts.includes('\\[x\\]\\(http'));
    assert.equal(att.content.actions[0].url, `https://talon.example/alerts/${hostile.alert_id}`);
  } finally {
    await rx.close();
  }
});

test('PagerDuty Events v2: trigger with dedup_key = alert id and mapped severity; resolve with the same key', async () => {
  const rx = await HttpReceiver.start();
  try {
    rx.defaultResponse = { status: 202, body: '{"status":"success","dedup_key":"x"}' };
    const d = new PagerDutyDestination('pd', { url: rx.url('/v2/enqueue'), routingKey: 'RK123' });
    const crit = makeAlert(2, { severity: 'critical' });
    const med = makeAlert(3, { severity: 'medium' });
    const res = await d.send([alertMessage(crit), alertMessage(med), resolveMessage(crit)]);
    assert.ok(res.every((r) => r.ok && r.httpStatus === 202));
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- loosely typed JSON bodies
    const [t1, t2, res1] = rx.json<Record<string, any>>();
    assert.equal(rx.requests[0].path, '/v2/enqueue');
    assert.equal(t1.routing_key, 'RK123');
    assert.equal(t1.event_action, 'trigger');
    assert.equal(t1.dedup_key, crit.alert_id);
    assert.equal(t1.payload.severity, 'critical');
    assert.equal(t1.payload.source, 'host-2');
    assert.equal(t1.payload.timestamp, crit.event_time);
    assert.ok(t1.payload.summary.length <= 1024);
    assert.equal(t2.payload.severity, 'warning');
    assert.deepEqual(res1, { routing_key: 'RK123', event_action: 'resolve', dedup_key: crit.alert_id });
  } finally {
    await rx.close();
  }
});

test('Splunk HEC: /services/collector/event, Authorization: Splunk <token>, several events per POST', async () => {
  const rx = await HttpReceiver.start();
  try {
    rx.defaultResponse = { status: 200, body: '{"text":"Success","code":0}' };
    const d = new SplunkDestination('hec', {
      url: rx.url('/'),
      token: 'tok-1',
      index: 'security',
      sourcetype: 'talon:alert',
      batchSize: 3,
    });
    const msgs = Array.from({ length: 5 }, (_, i) => alertMessage(makeAlert(i)));
    const res = await d.send(msgs);
    assert.equal(res.length, 5);
    assert.ok(res.every((r) => r.ok));
    assert.equal(rx.requests.length, 2, '5 events in batches of 3 = 2 POSTs');
    for (const req of rx.requests) {
      assert.equal(req.path, '/services/collector/event');
      assert.equal(req.headers.authorization, 'Splunk tok-1');
    }
    const events = rx.requests.flatMap((r) => r.text.split('\n').map((l) => JSON.parse(l)));
    assert.equal(events.length, 5);
    assert.equal(events[0].index, 'security');
    assert.equal(events[0].sourcetype, 'talon:alert');
    assert.equal(events[0].host, 'host-0');
    assert.equal(events[0].time, Date.parse(makeAlert(0).event_time) / 1000);
    assert.equal(events[4].event.alert_id, 'alert-00004');
  } finally {
    await rx.close();
  }
});

test('HTTP failures are classified: 429 with Retry-After, 5xx retryable, 4xx permanent with the body', async () => {
  const rx = await HttpReceiver.start();
  try {
    rx.respondNext(
      { status: 429, headers: { 'retry-after': '7' }, body: 'rate limited' },
      { status: 502, body: 'bad gateway' },
      { status: 404, body: 'no_service' },
    );
    const d = new SlackDestination('slack', rx.url('/'));
    const res = await d.send([
      alertMessage(makeAlert(1)),
      alertMessage(makeAlert(2)),
      alertMessage(makeAlert(3)),
    ]);
    assert.deepEqual(
      res.map((r) => [r.ok, r.retryable, r.httpStatus, r.retryAfterMs]),
      [
        [false, true, 429, 7000],
        [false, true, 502, undefined],
        [false, false, 404, undefined],
      ],
    );
    assert.equal(res[2].response, 'no_service');
    await rx.close();
    const [down] = await d.send([alertMessage(makeAlert(4))]);
    assert.equal(down.ok, false);
    assert.equal(down.retryable, true, 'connection refused is retryable');
  } finally {
    await rx.close().catch(() => undefined);
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openTempLake } from '../engine/test-support.js';
import { HttpReceiver } from '../testing/http-receiver.js';
import { commitAlerts, makeAlert, updateAlerts } from './test-support.js';
import { Notifier, runNotifier } from './notifier.js';
import { notifySchema } from './settings.js';
import { DeliveryLog } from './deliveries.js';
import type { Trigger } from '../engine/trigger.js';

const NOW: Trigger = { kind: 'available-now' };
const FAST = { initialBackoffMs: 5, maxBackoffMs: 20 };

test('routes alerts by severity, detection and tags; records deliveries; a second run sends nothing', async () => {
  const { lake, cleanup } = await openTempLake('talon-notify-');
  const hook = await HttpReceiver.start();
  const siem = await HttpReceiver.start();
  try {
    await commitAlerts(lake, [
      makeAlert(1, { severity: 'critical' }),
      makeAlert(2, { severity: 'low', detection: 'ioc_match', tags: ['ioc'] }),
      makeAlert(3, { severity: 'medium', tags: ['T1078'] }),
    ]);
    const config = notifySchema.parse({
      destinations: [
        { name: 'soc', type: 'webhook', url: hook.url('/soc') },
        { name: 'siem', type: 'webhook', url: siem.url('/siem') },
      ],
      routes: [
        { match: { severity: ['high', 'critical'] }, to: ['soc'] },
        { match: { detection: ['ioc_match'] }, to: ['siem'] },
        { match: { tags: ['T1078'] }, to: ['siem', 'soc'] },
      ],
    });
    const reports = await runNotifier(lake, config, NOW);
    assert.equal(reports.length, 1);
    assert.deepEqual(
      hook
        .json()
        .map((b) => b.alert_id)
        .sort(),
      ['alert-00001', 'alert-00003'],
    );
    assert.deepEqual(
      siem
        .json()
        .map((b) => b.alert_id)
        .sort(),
      ['alert-00002', 'alert-00003'],
    );
    const rows = await new DeliveryLog(lake).all();
    assert.equal(rows.length, 4);
    assert.ok(rows.every((r) => r.status === 'sent' && r.http_status === 200 && r.attempt === 1));

    // Nothing new: no batch, nothing sent. A new alert: only it is sent.
    assert.equal((await runNotifier(lake, config, NOW)).length, 0);
    await commitAlerts(lake, [makeAlert(4, { severity: 'high' })]);
    await runNotifier(lake, config, NOW);
    assert.deepEqual(
      hook
        .json()
        .map((b) => b.alert_id)
        .sort(),
      ['alert-00001', 'alert-00003', 'alert-00004'],
    );
    assert.equal(siem.requests.length, 2);
  } finally {
    await hook.close();
    await siem.close();
    await cleanup();
  }
});

test('retries 5xx and timeouts, honours 429 Retry-After, fails other 4xx at once with the body, dead-letters after N attempts', async () => {
  const { lake, cleanup } = await openTempLake('talon-notify-');
  const rx = await HttpReceiver.start();
  try {
    await commitAlerts(lake, [makeAlert(1), makeAlert(2), makeAlert(3), makeAlert(4)]);
    // Route each alert to the receiver under its own path so answers can be chosen per alert.
    rx.handler = (req) => {
      const id = (JSON.parse(req.text) as { alert_id: string }).alert_id;
      // the request is not in rx.requests yet: tries = earlier attempts
      const tries = rx.requests.filter((r) => r.text.includes(id)).length;
      if (id === 'alert-00001') return tries === 0 ? { status: 500, body: 'boom' } : { status: 200 };
      if (id === 'alert-00002')
        return tries === 0
          ? { status: 429, headers: { 'retry-after': '1' }, body: 'slow down' }
          : { status: 200 };
      if (id === 'alert-00003') return { status: 400, body: '{"error":"invalid payload"}' };
      return { status: 503, body: 'unavailable' };
    };
    const config = notifySchema.parse({
      destinations: [{ name: 'hook', type: 'webhook', url: rx.url('/'), timeout: '2s' }],
      retry: { max_attempts: 3 },
      concurrency: 1,
    });
    const n = new Notifier(lake, config, { retry: FAST });
    const counts = await n.processAlerts([makeAlert(1), makeAlert(2), makeAlert(3), makeAlert(4)]);
    assert.equal(counts.sent, 2);
    assert.equal(counts.failed, 1);
    assert.equal(counts.dead_letter, 1);
    const rows = await n.deliveries.all();
    const of = (id: string) =>
      rows.filter((r) => r.alert_id === id).map((r) => `${r.attempt}:${r.status}:${r.http_status}`);
    assert.deepEqual(of('alert-00001'), ['1:retrying:500', '2:sent:200']);
    assert.deepEqual(of('alert-00002'), ['1:retrying:429', '2:sent:200']);
    assert.deepEqual(of('alert-00003'), ['1:failed:400']);
    assert.deepEqual(of('alert-00004'), ['1:retrying:503', '2:retrying:503', '3:dead_letter:503']);
    assert.match(String(rows.find((r) => r.alert_id === 'alert-00003')!.response), /invalid payload/);
    // Retry-After: 1 was waited for (the 5 ms backoff alone would be far shorter).
    const r429 = rx.requests.filter((r) => r.text.includes('alert-00002'));
    assert.ok(r429[1].at - r429[0].at >= 950, `waited ${r429[1].at - r429[0].at} ms`);
    const dead = await n.deliveries.deadLetters();
    assert.deepEqual(
      dead.map((d) => d.alert_id),
      ['alert-00004'],
    );

    // A replay of the same alerts sends nothing: every pair is final.
    const before = rx.requests.length;
    await n.processAlerts([makeAlert(1), makeAlert(2), makeAlert(3), makeAlert(4)]);
    assert.equal(rx.requests.length, before);
  } finally {
    await rx.close();
    await cleanup();
  }
});

test('a slow endpoint times out and is retried', async () => {
  const { lake, cleanup } = await openTempLake('talon-notify-');
  const rx = await HttpReceiver.start();
  try {
    rx.respondNext({ status: 200, delayMs: 3000 });
    const config = notifySchema.parse({
      destinations: [{ name: 'hook', type: 'webhook', url: rx.url('/'), timeout: '300ms' }],
    });
    const n = new Notifier(lake, config, { retry: FAST });
    const counts = await n.processAlerts([makeAlert(1)]);
    assert.equal(counts.sent, 1);
    const rows = await n.deliveries.all();
    assert.deepEqual(
      rows.map((r) => r.status),
      ['retrying', 'sent'],
    );
    assert.match(String(rows[0].error), /timeout/);
    assert.equal(rx.requests.length, 2);
  } finally {
    await rx.close();
    await cleanup();
  }
});

test('grouping: alerts of one detection in a window become one digest with count and first N items', async () => {
  const { lake, cleanup } = await openTempLake('talon-notify-');
  const rx = await HttpReceiver.start();
  try {
    const alerts = [
      ...Array.from({ length: 7 }, (_, i) => makeAlert(i)),
      makeAlert(100, { detection: 'ioc_match', title: 'IoC match' }),
    ];
    const config = notifySchema.parse({
      destinations: [{ name: 'hook', type: 'webhook', url: rx.url('/') }],
      grouping: { window: '5m', max_items: 3 },
    });
    const n = new Notifier(lake, config);
    await n.processAlerts(alerts);
    const bodies = rx.json();
    assert.equal(bodies.length, 2);
    const digest = bodies.find((b) => b.kind === 'digest')!;
    assert.equal(digest.count, 7);
    assert.equal((digest.alerts as unknown[]).length, 3);
    assert.equal((digest.alert_ids as unknown[]).length, 7);
    const single = bodies.find((b) => b.kind === 'alert')!;
    assert.equal(single.alert_id, 'alert-00100');
    const rows = await n.deliveries.all();
    assert.equal(rows.length, 8);
    assert.equal(
      new Set(rows.filter((r) => r.detection === 'vulnerable_service').map((r) => r.message_id)).size,
      1,
    );
  } finally {
    await rx.close();
    await cleanup();
  }
});

test('suppression folds repeats of (detection, entity) into the first alert, also across batches', async () => {
  const { lake, cleanup } = await openTempLake('talon-notify-');
  const rx = await HttpReceiver.start();
  try {
    const config = notifySchema.parse({
      destinations: [{ name: 'hook', type: 'webhook', url: rx.url('/') }],
      suppression: { window: '1h' },
    });
    const n = new Notifier(lake, config);
    const same = { host: 'dc-1' };
    await n.processAlerts([
      makeAlert(1, same),
      makeAlert(2, same),
      makeAlert(3, same),
      makeAlert(4, { host: 'web-2' }),
    ]);
    const bodies = rx.json();
    assert.deepEqual(
      bodies.map((b) => [b.alert_id, b.count ?? 1]),
      [
        ['alert-00001', 3],
        ['alert-00004', 1],
      ],
    );
    // A later batch: the repeat within the hour is suppressed by the alert sent before.
    await n.processAlerts([makeAlert(5, same), makeAlert(4000, same)]);
    assert.deepEqual(
      rx
        .json()
        .slice(2)
        .map((b) => b.alert_id),
      ['alert-04000'],
    );
    const rows = await n.deliveries.all();
    const sup = rows.filter((r) => r.status === 'suppressed');
    assert.deepEqual(sup.map((r) => [r.alert_id, r.suppressed_by]).sort(), [
      ['alert-00002', 'alert-00001'],
      ['alert-00003', 'alert-00001'],
      ['alert-00005', 'alert-00001'],
    ]);
  } finally {
    await rx.close();
    await cleanup();
  }
});

test('throttle: past the budget of a destination, the rest folds into one digest; nothing is lost', async () => {
  const { lake, cleanup } = await openTempLake('talon-notify-');
  const rx = await HttpReceiver.start();
  try {
    const config = notifySchema.parse({
      destinations: [
        { name: 'hook', type: 'webhook', url: rx.url('/'), throttle: { max_messages: 3, period: '1m' } },
      ],
    });
    const n = new Notifier(lake, config);
    await n.processAlerts(Array.from({ length: 10 }, (_, i) => makeAlert(i)));
    const bodies = rx.json();
    assert.equal(bodies.length, 3);
    assert.deepEqual(
      bodies.slice(0, 2).map((b) => b.alert_id),
      ['alert-00000', 'alert-00001'],
    );
    assert.equal(bodies[2].kind, 'digest');
    assert.equal(bodies[2].count, 8);
    const rows = await n.deliveries.all();
    assert.equal(rows.filter((r) => r.status === 'sent').length, 10);
  } finally {
    await rx.close();
    await cleanup();
  }
});

test('PagerDuty resolve is sent when an alert is closed (read from the change feed)', async () => {
  const { lake, cleanup } = await openTempLake('talon-notify-');
  const pd = await HttpReceiver.start();
  try {
    pd.defaultResponse = { status: 202, body: '{"status":"success","message":"Event processed"}' };
    const config = notifySchema.parse({
      destinations: [
        { name: 'oncall', type: 'pagerduty', routing_key: 'R0UTING', url: pd.url('/v2/enqueue') },
      ],
    });
    await commitAlerts(lake, [makeAlert(1), makeAlert(2)]);
    await runNotifier(lake, config, NOW);
    await updateAlerts(lake, [makeAlert(1, { status: 'closed' })]);
    await runNotifier(lake, config, NOW);
    const bodies = pd.json();
    assert.deepEqual(
      bodies.map((b) => [b.event_action, b.dedup_key]),
      [
        ['trigger', 'alert-00001'],
        ['trigger', 'alert-00002'],
        ['resolve', 'alert-00001'],
      ],
    );
  } finally {
    await pd.close();
    await cleanup();
  }
});

test('grouping across batches: alerts of one detection in two batches within the window become ONE digest, once', async () => {
  const { lake, cleanup } = await openTempLake('talon-notify-');
  const rx = await HttpReceiver.start();
  try {
    const config = notifySchema.parse({
      destinations: [{ name: 'hook', type: 'webhook', url: rx.url('/') }],
      grouping: { window: '10m', max_items: 2 },
    });
    // makeAlert(i) happens at 12:00:0i, inside the 12:00–12:10 window.
    const open = () => Date.UTC(2026, 0, 10, 12, 5, 0);
    const closedAt = () => Date.UTC(2026, 0, 10, 12, 10, 1);
    const first = [makeAlert(1), makeAlert(2)];
    const second = [makeAlert(3), makeAlert(4), makeAlert(5)];
    await commitAlerts(lake, first);
    await commitAlerts(lake, second);

    const n1 = new Notifier(lake, config, { now: open });
    const c1 = await n1.processAlerts(first);
    const c2 = await n1.processAlerts(second);
    assert.equal(c1.pending + c2.pending, 5);
    assert.equal(rx.requests.length, 0, 'nothing is sent while the window is open');
    assert.equal((await n1.flushPending()).messages, 0);
    const held = await n1.deliveries.all();
    assert.deepEqual(new Set(held.map((r) => r.status)), new Set(['pending']));

    // A new notifier (as after a restart) finds the held alerts in `deliveries` and sends one digest.
    const n2 = new Notifier(lake, config, { now: closedAt });
    const c3 = await n2.flushPending();
    assert.equal(c3.messages, 1);
    const bodies = rx.json();
    assert.equal(bodies.length, 1);
    assert.equal(bodies[0].kind, 'digest');
    assert.equal(bodies[0].count, 5);
    assert.equal((bodies[0].alerts as unknown[]).length, 2);
    assert.deepEqual(bodies[0].alert_ids, [
      'alert-00001',
      'alert-00002',
      'alert-00003',
      'alert-00004',
      'alert-00005',
    ]);

    // Replaying the second batch and flushing again sends nothing more.
    await n2.processAlerts(second);
    await n2.flushPending(true);
    assert.equal(rx.requests.length, 1);
    const sent = (await n2.deliveries.all()).filter((r) => r.status === 'sent');
    assert.equal(sent.length, 5);
    assert.equal(new Set(sent.map((r) => r.message_id)).size, 1);
  } finally {
    await rx.close();
    await cleanup();
  }
});

test('grouping across batches: an available-now run sends digests still held at its end', async () => {
  const { lake, cleanup } = await openTempLake('talon-notify-');
  const rx = await HttpReceiver.start();
  try {
    const config = notifySchema.parse({
      destinations: [{ name: 'hook', type: 'webhook', url: rx.url('/') }],
      grouping: { window: '10m' },
    });
    const now = () => Date.UTC(2026, 0, 10, 12, 5, 0);
    await commitAlerts(lake, [makeAlert(1), makeAlert(2)]);
    await runNotifier(lake, config, NOW, { now });
    await commitAlerts(lake, [makeAlert(3)]);
    await runNotifier(lake, config, NOW, { now });
    // Each run ends caught up, so each flushes what it held: a digest, then the lone alert; none twice.
    const bodies = rx.json();
    assert.equal(bodies.length, 2);
    assert.equal(bodies[0].kind, 'digest');
    assert.equal(bodies[0].count, 2);
    assert.equal(bodies[1].alert_id, 'alert-00003');
    const sent = (await new DeliveryLog(lake).all()).filter((r) => r.status === 'sent');
    assert.equal(sent.length, 3);
  } finally {
    await rx.close();
    await cleanup();
  }
});

/**
 * Kafka destination against librdkafka's mock cluster (`kcat … -X test.mock.num.brokers=3`,
 * which prints the mock bootstrap servers), read back with a kafkajs consumer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Kafka, logLevel } from 'kafkajs';
import { makeAlert } from '../test-support.js';
import { alertMessage } from '../message.js';
import { KafkaDestination } from './kafka.js';

async function startMockCluster(): Promise<{ brokers: string[]; child: ChildProcess }> {
  const child = spawn(
    'kcat',
    ['-C', '-b', 'localhost:1', '-X', 'test.mock.num.brokers=3', '-t', '_talon_mock', '-d', 'mock', '-q'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let err = '';
    const t = setTimeout(
      () => reject(new Error(`kcat printed no mock bootstrap servers: ${err.slice(0, 500)}`)),
      15_000,
    );
    child.on('error', (e) => {
      clearTimeout(t);
      reject(
        new Error(`kcat is needed for the Kafka tests (scripts/system-deps.sh installs it): ${e.message}`),
      );
    });
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /bootstrap\.servers=(\S+)/.exec(err);
      if (m) {
        clearTimeout(t);
        child.stderr!.removeAllListeners('data');
        child.stderr!.resume();
        resolve({ brokers: m[1].split(','), child });
      }
    });
  });
}

test('Kafka: JSON value, key = alert id, headers; consumed back from the mock cluster', async () => {
  const { brokers, child } = await startMockCluster();
  const kafka = new Kafka({ clientId: 'talon-test', brokers, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: 'talon-test-' + process.pid });
  try {
    // The mock cluster has no controller for kafkajs' admin client; the producer auto-creates the topic.
    const d = new KafkaDestination({ name: 'bus', brokers, topic: 'alerts' });
    const alerts = Array.from({ length: 6 }, (_, i) => makeAlert(i, { description: `x <!channel> "${i}"` }));
    const res = await d.send(alerts.map((a) => alertMessage(a)));
    await d.close();
    assert.ok(
      res.every((r) => r.ok),
      JSON.stringify(res),
    );
    assert.match(String(res[0].reply), /^alerts\[\d\]@\d+/);

    const got: { key: string; value: Record<string, unknown>; severity: string }[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: 'alerts', fromBeginning: true });
    const done = new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          got.push({
            key: message.key!.toString(),
            value: JSON.parse(message.value!.toString()),
            severity: String(message.headers?.severity),
          });
          if (got.length >= alerts.length) resolve();
        },
      });
    });
    await Promise.race([
      done,
      new Promise((_r, rej) => setTimeout(() => rej(new Error(`consumed ${got.length} of 6`)), 60_000)),
    ]);
    got.sort((a, b) => a.key.localeCompare(b.key));
    assert.deepEqual(
      got.map((g) => g.key),
      alerts.map((a) => a.alert_id),
    );
    for (const g of got) {
      assert.equal(g.value.alert_id, g.key);
      assert.equal(g.severity, 'high');
    }
    assert.equal(got[2].value.description, 'x <!channel> "2"');
  } finally {
    await consumer.disconnect().catch(() => undefined);
    child.kill('SIGTERM');
  }
});

test('Kafka: unreachable brokers are a retryable failure', async () => {
  const d = new KafkaDestination({ name: 'bus', brokers: ['127.0.0.1:1'], topic: 'alerts', timeoutMs: 500 });
  const [r] = await d.send([alertMessage(makeAlert(1))]);
  await d.close();
  assert.equal(r.ok, false);
  assert.equal(r.retryable, true);
});

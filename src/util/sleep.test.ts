import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { sleep } from './sleep.js';

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('sleep: waits the given time when nothing aborts it, then leaves no listener behind', async () => {
  const ac = new AbortController();
  let done = false;
  const p = sleep(20, ac.signal).then(() => (done = true));
  assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false, 'still waiting after one turn of the event loop');
  await p;
  assert.equal(done, true);
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
});

test('sleep: an abort ends a long wait at once and clears its timer', async () => {
  const ac = new AbortController();
  const before = timers();
  const p = sleep(10 * 60_000, ac.signal);
  assert.equal(timers(), before + 1);
  ac.abort();
  // Resolves (does not reject) even though the signal aborted.
  await p;
  assert.equal(timers(), before, 'the ten-minute timer is gone');
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
});

test('sleep: an already aborted signal, zero or a negative time return without a timer', async () => {
  const before = timers();
  const aborted = AbortSignal.abort();
  const waits = [sleep(60_000, aborted), sleep(0), sleep(-5), sleep(Number.NaN)];
  assert.equal(timers(), before);
  await Promise.all(waits);
  assert.equal(getEventListeners(aborted, 'abort').length, 0);
});

test('sleep: many waits on one signal do not pile up listeners', async () => {
  const ac = new AbortController();
  for (let i = 0; i < 50; i++) await sleep(1, ac.signal);
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  const pending = [sleep(60_000, ac.signal), sleep(60_000, ac.signal)];
  assert.equal(getEventListeners(ac.signal, 'abort').length, 2);
  ac.abort();
  await Promise.all(pending);
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
});

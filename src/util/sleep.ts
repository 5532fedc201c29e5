/**
 * Waits `ms` milliseconds, or less: an aborted `signal` ends the wait at once. It resolves
 * (never rejects) so a polling loop sleeps, then checks its signal and stops cleanly — unlike
 * node's `timers/promises` setTimeout, which rejects with an AbortError. The timer and the
 * abort listener are both removed when the wait ends either way: a long-running service
 * sleeps thousands of times on one signal.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (!(ms > 0) || signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

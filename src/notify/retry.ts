/**
 * Retry policy of deliveries: exponential backoff with jitter, a server's Retry-After
 * honoured, a cap on attempts after which the alert is dead-lettered.
 * Defaults: 5 attempts, 1 s first backoff, 1 min cap.
 */
export interface RetryPolicy {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

/** Longest Retry-After obeyed (a server asking for more is capped here, the attempt still counts). */
export const MAX_RETRY_AFTER_MS = 15 * 60_000;

/**
 * Wait before attempt `attempt + 1`: initial·2^(attempt−1), capped, with "equal jitter"
 * (half fixed, half random) so many notifiers failing together do not retry in lockstep.
 * A Retry-After wins when it asks for longer.
 */
export function backoffMs(
  policy: RetryPolicy,
  attempt: number,
  retryAfterMs?: number,
  random = Math.random,
): number {
  const exp = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** Math.max(0, attempt - 1));
  const jittered = exp / 2 + random() * (exp / 2);
  if (retryAfterMs !== undefined) return Math.min(MAX_RETRY_AFTER_MS, Math.max(retryAfterMs, 0));
  return Math.round(jittered);
}

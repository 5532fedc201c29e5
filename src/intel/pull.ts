/**
 * `talon intel pull [FEED]`: fetch configured feeds over HTTP(S) and load what changed.
 *
 * Conditional requests: the ETag and Last-Modified of the last successful fetch are stored per
 * feed (object `_talon/intel/feeds.json` in the lake's store, so an S3 lake keeps it too) and
 * sent back as If-None-Match / If-Modified-Since; a 304 costs one round trip and loads nothing.
 * A feed fetched less than its `interval` ago is not fetched at all (unless forced). Identical
 * content under a new ETag is still a no-op: loads are idempotent by content hash (txn).
 */
import { createHash } from 'node:crypto';
import type { Lake } from '../lake/lake.js';
import { loadIocText, reconcileAllowList } from './load.js';
import type { LoadReport } from './load.js';
import { parseDuration } from '../engine/duration.js';
import type { FeedConfig, IntelSettings } from './feeds/settings.js';
import { pullTaxii } from './taxii.js';

export const FEED_STATE_KEY = '_talon/intel/feeds.json';

export interface FeedState {
  etag?: string;
  lastModified?: string;
  /** ISO time of the last request (any outcome) */
  fetchedAt?: string;
  /** sha256 of the last body loaded */
  contentHash?: string;
  /** TAXII: the X-TAXII-Date-Added-Last of the last page, the next added_after */
  addedAfter?: string;
  lastStatus?: number;
  lastError?: string;
}

export type FeedStates = Record<string, FeedState>;

export interface PullResult {
  feed: string;
  status: 'loaded' | 'not-modified' | 'not-due' | 'unchanged' | 'error';
  httpStatus?: number;
  report?: LoadReport;
  error?: string;
}

export async function readFeedStates(lake: Lake): Promise<FeedStates> {
  const buf = await lake.store.get(FEED_STATE_KEY);
  if (!buf) return {};
  try {
    return JSON.parse(buf.toString('utf8')) as FeedStates;
  } catch {
    return {};
  }
}

async function writeFeedStates(lake: Lake, states: FeedStates): Promise<void> {
  await lake.store.put(FEED_STATE_KEY, JSON.stringify(states, null, 2));
}

export interface PullOptions {
  settings: IntelSettings;
  /** Ignore interval and validators: fetch and load unconditionally. */
  force?: boolean;
  now?: Date;
  fetchImpl?: typeof fetch;
}

async function pullHttp(
  lake: Lake,
  feed: FeedConfig,
  state: FeedState,
  opts: PullOptions,
): Promise<PullResult> {
  const headers: Record<string, string> = { 'user-agent': 'talon-intel', ...feed.headers };
  if (!opts.force) {
    if (state.etag) headers['if-none-match'] = state.etag;
    if (state.lastModified) headers['if-modified-since'] = state.lastModified;
  }
  const res = await (opts.fetchImpl ?? fetch)(feed.url, { headers, redirect: 'follow' });
  state.lastStatus = res.status;
  if (res.status === 304) {
    await res.body?.cancel();
    return { feed: feed.name, status: 'not-modified', httpStatus: 304 };
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status} ${res.statusText}`);
  }
  const text = await res.text();
  const hash = createHash('sha256').update(text).digest('hex');
  const etag = res.headers.get('etag');
  const lm = res.headers.get('last-modified');
  if (etag) state.etag = etag;
  else delete state.etag;
  if (lm) state.lastModified = lm;
  else delete state.lastModified;
  if (!opts.force && state.contentHash === hash) {
    return { feed: feed.name, status: 'unchanged', httpStatus: res.status };
  }
  const report = await loadIocText(lake, text, feed.format, {
    dataset: feed.name,
    type: feed.type,
    settings: opts.settings,
    now: opts.now,
  });
  state.contentHash = hash;
  return { feed: feed.name, status: 'loaded', httpStatus: res.status, report };
}

/** Pulls one feed by name, or all configured feeds. */
export async function pullFeeds(lake: Lake, names: string[], opts: PullOptions): Promise<PullResult[]> {
  const feeds = opts.settings.feeds.filter((f) => names.length === 0 || names.includes(f.name));
  const unknown = names.filter((n) => !opts.settings.feeds.some((f) => f.name === n));
  if (unknown.length)
    throw new Error(
      `unknown feed(s): ${unknown.join(', ')} (configured: ${opts.settings.feeds.map((f) => f.name).join(', ') || 'none'})`,
    );
  const states = await readFeedStates(lake);
  const now = opts.now ?? new Date();
  const results: PullResult[] = [];
  for (const feed of feeds) {
    const state = (states[feed.name] ??= {});
    const due =
      opts.force ||
      !state.fetchedAt ||
      now.getTime() - new Date(state.fetchedAt).getTime() >= parseDuration(feed.interval);
    if (!due) {
      results.push({ feed: feed.name, status: 'not-due' });
      continue;
    }
    try {
      const r = feed.taxii_collection
        ? await pullTaxii(lake, feed, state, opts)
        : await pullHttp(lake, feed, state, opts);
      delete state.lastError;
      results.push(r);
    } catch (err) {
      state.lastError = (err as Error).message;
      results.push({ feed: feed.name, status: 'error', error: (err as Error).message });
    }
    state.fetchedAt = now.toISOString();
    await writeFeedStates(lake, states);
  }
  // Every load reconciles the allow-list; when nothing was loaded (304, not due, unchanged)
  // an edited allow-list still takes effect on this pull.
  if (!results.some((r) => r.report)) await reconcileAllowList(lake, opts.settings.allowList, now);
  return results;
}

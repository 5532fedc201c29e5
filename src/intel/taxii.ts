/**
 * A TAXII 2.1 client for `talon intel pull`: a feed with `taxii_collection` polls
 * `<api root>/collections/<id>/objects/` with `added_after` (the X-TAXII-Date-Added-Last of
 * the previous poll) and follows pagination (`more` + `next`), loading the STIX objects of
 * every page. Discovery and collection listing are exposed for `talon intel taxii`-style use.
 */
import type { Lake } from '../lake/lake.js';
import type { FeedConfig } from './feeds/settings.js';
import type { FeedState, PullOptions, PullResult } from './pull.js';
import { parseFeed } from './feeds/index.js';
import { loadIocRecords } from './load.js';
import type { LoadReport } from './load.js';
import { createHash } from 'node:crypto';

export const TAXII_MEDIA_TYPE = 'application/taxii+json;version=2.1';

export interface TaxiiClientOptions {
  headers?: Record<string, string>;
  fetchImpl?: typeof fetch;
}

async function getJson(url: string, opts: TaxiiClientOptions): Promise<{ body: unknown; headers: Headers }> {
  const res = await (opts.fetchImpl ?? fetch)(url, {
    headers: { accept: TAXII_MEDIA_TYPE, ...(opts.headers ?? {}) },
  });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`TAXII ${url}: HTTP ${res.status}`);
  }
  return { body: await res.json(), headers: res.headers };
}

/** GET /taxii2/ (discovery): the API roots. */
export async function taxiiDiscovery(
  url: string,
  opts: TaxiiClientOptions = {},
): Promise<{ api_roots?: string[]; default?: string }> {
  return (await getJson(url, opts)).body as { api_roots?: string[]; default?: string };
}

/** GET <api root>/collections/: the collections (id, title, can_read). */
export async function taxiiCollections(
  apiRoot: string,
  opts: TaxiiClientOptions = {},
): Promise<{ id: string; title?: string; can_read?: boolean }[]> {
  const body = (await getJson(new URL('collections/', withSlash(apiRoot)).href, opts)).body as {
    collections?: { id: string; title?: string; can_read?: boolean }[];
  };
  return body.collections ?? [];
}

function withSlash(u: string): string {
  return u.endsWith('/') ? u : `${u}/`;
}

/** Every object added to a collection after `addedAfter`, page by page. */
export async function taxiiObjects(
  apiRoot: string,
  collection: string,
  opts: TaxiiClientOptions & { addedAfter?: string; limit?: number } = {},
): Promise<{ objects: unknown[]; dateAddedLast?: string; pages: number }> {
  const base = new URL(`collections/${encodeURIComponent(collection)}/objects/`, withSlash(apiRoot));
  const objects: unknown[] = [];
  let next: string | undefined;
  let dateAddedLast: string | undefined;
  let pages = 0;
  for (;;) {
    const u = new URL(base.href);
    if (opts.addedAfter) u.searchParams.set('added_after', opts.addedAfter);
    if (opts.limit) u.searchParams.set('limit', String(opts.limit));
    if (next) u.searchParams.set('next', next);
    const { body, headers } = await getJson(u.href, opts);
    pages++;
    const env = body as { more?: boolean; next?: string; objects?: unknown[] };
    objects.push(...(env.objects ?? []));
    dateAddedLast = headers.get('x-taxii-date-added-last') ?? dateAddedLast;
    if (!env.more || !env.next) break;
    next = env.next;
  }
  return { objects, dateAddedLast, pages };
}

export async function pullTaxii(
  lake: Lake,
  feed: FeedConfig,
  state: FeedState,
  opts: PullOptions,
): Promise<PullResult> {
  const { objects, dateAddedLast } = await taxiiObjects(feed.url, feed.taxii_collection!, {
    headers: feed.headers,
    fetchImpl: opts.fetchImpl,
    addedAfter: opts.force ? undefined : state.addedAfter,
  });
  if (dateAddedLast) state.addedAfter = dateAddedLast;
  if (objects.length === 0) return { feed: feed.name, status: 'not-modified', httpStatus: 200 };
  const text = JSON.stringify({ type: 'bundle', objects });
  const parsed = parseFeed('stix', text, { dataset: feed.name });
  const loadId = createHash('sha256').update(`taxii\0${feed.name}\0`).update(text).digest('hex').slice(0, 32);
  const report: LoadReport = await loadIocRecords(lake, parsed, {
    dataset: feed.name,
    format: 'stix',
    loadId,
    settings: opts.settings,
    now: opts.now,
  });
  return { feed: feed.name, status: 'loaded', httpStatus: 200, report };
}

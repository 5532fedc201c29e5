/**
 * Enrichment micro-benchmark (not a test: timings on a shared machine are not assertions).
 *   node dist/enrich/bench.js [distinctIps=100000]
 * Prints one JSON object: database load times, lookups/s over distinct (uncached) addresses,
 * and the time to build the DuckDB lookup tables the ingest pipeline joins — all in CPU time.
 */
import { Db } from '../sql/duckdb.js';
import { Enricher } from './enricher.js';
import { classifyValue } from './ip.js';

function randomPublicV4(n: number, seed: number): string[] {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  const out = new Set<string>();
  while (out.size < n) {
    const v = (next() ^ (next() << 16)) >>> 0;
    const ip = `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
    if (classifyValue(ip).ip_class === 'public') out.add(ip);
  }
  return [...out];
}

function randomPublicV6(n: number, seed: number): string[] {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 16;
  // Inside allocated RIR space so most addresses have answers.
  const prefixes = ['2001', '2400', '2600', '2a00', '2a02', '2800', '2c0f'];
  const out = new Set<string>();
  while (out.size < n) {
    const p = prefixes[next() % prefixes.length];
    out.add(`${p}:${next().toString(16)}:${next().toString(16)}::${next().toString(16)}`);
  }
  return [...out];
}

/**
 * Milliseconds of process CPU time since `t0` (a cpuUsage snapshot): on a shared, busy machine
 * wall-clock time mostly measures the neighbours; CPU time measures the work.
 */
function ms(t0: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(t0);
  return Math.round((d.user + d.system) / 1000);
}

const now = () => process.cpuUsage();

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 100_000);
  const v4 = randomPublicV4(n, 1);
  const v6 = randomPublicV6(Math.round(n / 5), 2);
  const domains = Array.from({ length: n }, (_, i) => `h${i}.svc${i % 997}.example${i % 13}.co.uk`);

  const enricher = await Enricher.open();
  let t = now();
  enricher.lookupIp('8.8.8.8');
  const loadV4 = ms(t);
  t = now();
  enricher.lookupIp('2001:4860:4860::8888');
  const loadV6 = ms(t);

  t = now();
  for (const ip of v4) enricher.lookupIp(ip);
  const v4Ms = ms(t);
  t = now();
  for (const ip of v6) enricher.lookupIp(ip);
  const v6Ms = ms(t);
  t = now();
  for (const ip of v4) enricher.lookupIp(ip);
  const cachedMs = ms(t);
  t = now();
  for (const d of domains) enricher.lookupDomain(d);
  const domMs = ms(t);

  const db = await Db.open();
  const fresh = await Enricher.open();
  fresh.lookupIp('8.8.8.8');
  t = now();
  await fresh.ipTable(db, 'ip_lookup', v4);
  const ipTableColdMs = ms(t);
  t = now();
  await fresh.ipTable(db, 'ip_lookup', v4);
  const ipTableWarmMs = ms(t);
  t = now();
  await fresh.domainTable(db, 'domain_lookup', domains);
  const domainTableMs = ms(t);
  db.close();

  const rate = (count: number, took: number) => Math.round((count / Math.max(took, 1)) * 1000);
  console.log(
    JSON.stringify(
      {
        distinct_ipv4: v4.length,
        distinct_ipv6: v6.length,
        bundled_load_ms: { ipv4_city_and_asn: loadV4, ipv6_city_and_asn: loadV6 },
        lookups_per_s: {
          ipv4_uncached: rate(v4.length, v4Ms),
          ipv6_uncached: rate(v6.length, v6Ms),
          ipv4_cached: rate(v4.length, cachedMs),
          domains_uncached: rate(domains.length, domMs),
        },
        duckdb_table_ms: {
          ipTable_lookups_and_load: ipTableColdMs,
          ipTable_load_only: ipTableWarmMs,
          domainTable_lookups_and_load: domainTableMs,
        },
        rss_mb: Math.round(process.memoryUsage().rss / 1e6),
      },
      null,
      2,
    ),
  );
}

await main();

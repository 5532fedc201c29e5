/**
 * `talon generate`: realistic, deterministic FDR data with planted attack scenarios and the alerts a
 * correct detector must raise on it.
 *
 * Output folder:
 *   data/<uuid>/part-NNNNN.gz        event batches (gzip'd NDJSON), time-ordered slices of the window
 *   fdrv2/aidmaster/<uuid>/part-00000.gz   host inventory rows keyed by aid
 *   fdrv2/userinfo/<uuid>/part-00000.gz    user rows keyed by UserSid
 *   manifests/<uuid>.json            the FDR SQS message body of each batch
 *   iocs.csv                         the IoC feed the ioc_match scenario uses
 *   ground-truth.json                parameters, expected alerts, decoys, how each alert is derived
 *
 * Memory is bounded by one part (at most `partEvents` events) whatever `events` is.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Progress } from '../log.js';
import { asnDatabaseVersion, defaultAsnCsvPath } from './asn.js';
import { BackgroundGenerator } from './background.js';
import { EventFactory, secondsString, type FdrEvent } from './events.js';
import { Rng } from './prng.js';
import { bootProcesses, DAY, planScenarios, type Decoy } from './scenarios.js';
import {
  DEFAULT_VULNERABLE_PORTS,
  DERIVATION,
  GroundTruth,
  IOC_CSV_COLUMNS,
  IOC_DEDUP_WINDOW_MS,
  IOC_MAPPINGS,
  iocsCsv,
  isoTime,
  type ExpectedAlert,
} from './truth.js';
import { FdrBatchWriter } from './writer.js';
import { buildWorld, MIN_HOSTS, type World } from './world.js';

export { DEFAULT_VULNERABLE_PORTS, IOC_MAPPINGS } from './truth.js';
export type { ExpectedAlert, IocEntry } from './truth.js';
export type { FdrManifest } from './writer.js';

export interface GenerateOptions {
  /** Output folder (created). */
  out: string;
  /** Number of events in data/ (the planted scenario events count towards it). */
  events: number;
  /** Number of hosts (sensors); at least 8. Default 25. */
  hosts?: number;
  /** Length of the time window in days (may be fractional, at least 1). Default 7. */
  days?: number;
  /** PRNG seed; the same seed and options give byte-identical output. Default 'talon'. */
  seed?: string | number;
  /** Start of the window, ISO-8601. Default 2026-03-02T00:00:00.000Z (a Monday). */
  start?: string;
  /** Number of FDR batches in data/. Default: enough for ≤ 4 per day and ≤ 100 events each, at least 1 per 200,000 events. */
  batches?: number;
  /** The new_logon_location learning period, in days from the start. Default 1. */
  learningDays?: number;
  /** Most background events in one part file (and in memory at once). Default 10,000. */
  partEvents?: number;
  /** Remove earlier generator output in `out` first (data/, fdrv2/, manifests/, iocs.csv, ground-truth.json). */
  force?: boolean;
  /** The ASN CSV to take public addresses from. Default: the bundled @ip-location-db/asn asn-ipv4.csv. */
  asnCsvPath?: string;
  /** S3 bucket name written into the manifests. Default: a Falcon-like name drawn from the seed. */
  bucket?: string;
  /** Show progress on stderr (src/log.ts Progress). Default true. */
  progress?: boolean;
}

export interface GenerateSummary {
  out: string;
  seed: string;
  start: string;
  end: string;
  events: number;
  eventsByType: Record<string, number>;
  batches: number;
  /** Files written in total (parts, fdrv2 parts, manifests, iocs.csv, ground-truth.json). */
  files: number;
  dataFiles: number;
  /** Compressed bytes of all parts (data + fdrv2). */
  bytes: number;
  uncompressedBytes: number;
  hosts: number;
  users: number;
  iocs: number;
  alerts: Record<'vulnerable_services' | 'new_logon_location' | 'ioc_match', number>;
  decoys: number;
  /** Most events held in memory at once (one part). */
  maxEventsInMemory: number;
  paths: {
    data: string[];
    aidmaster: string;
    userinfo: string;
    manifests: string[];
    iocs: string;
    groundTruth: string;
  };
}

export const DEFAULT_START = '2026-03-02T00:00:00.000Z';
const GENERATED_ENTRIES = ['data', 'fdrv2', 'manifests', 'iocs.csv', 'ground-truth.json'];

export function defaultBatches(events: number, days: number): number {
  const byTime = Math.max(1, Math.round(days * 4));
  const bySize = Math.max(1, Math.floor(events / 100));
  return Math.max(Math.min(byTime, bySize), Math.ceil(events / 200_000));
}

function validate(opts: GenerateOptions): Required<
  Omit<GenerateOptions, 'asnCsvPath' | 'bucket' | 'start'>
> & {
  startMs: number;
} {
  const int = (name: string, v: number, min: number): number => {
    if (!Number.isInteger(v) || v < min)
      throw new Error(`generate: ${name} must be an integer ≥ ${min}, got ${v}`);
    return v;
  };
  const events = int('events', opts.events, 1);
  const hosts = int('hosts', opts.hosts ?? 25, MIN_HOSTS);
  const days = opts.days ?? 7;
  if (!(Number.isFinite(days) && days >= 1 && days <= 3660))
    throw new Error(`generate: days must be between 1 and 3660, got ${days}`);
  const learningDays = opts.learningDays ?? 1;
  if (!(Number.isFinite(learningDays) && learningDays >= 0))
    throw new Error(`generate: learning days must be ≥ 0, got ${learningDays}`);
  const start = opts.start ?? DEFAULT_START;
  const startMs = Date.parse(start);
  if (!Number.isFinite(startMs) || !/^\d{4}-\d{2}-\d{2}/.test(start))
    throw new Error(`generate: start must be an ISO-8601 date, got "${start}"`);
  const batches = int('batches', opts.batches ?? defaultBatches(events, days), 1);
  const partEvents = int('partEvents', opts.partEvents ?? 10_000, 1);
  return {
    out: opts.out,
    events,
    hosts,
    days,
    learningDays,
    startMs,
    batches,
    partEvents,
    seed: String(opts.seed ?? 'talon'),
    force: opts.force ?? false,
    progress: opts.progress ?? true,
  };
}

async function prepareOut(out: string, force: boolean): Promise<void> {
  await mkdir(out, { recursive: true });
  const present = (await readdir(out)).filter((n) => GENERATED_ENTRIES.includes(n));
  if (present.length === 0) return;
  if (!force) {
    throw new Error(
      `generate: ${out} already holds generator output (${present.join(', ')}); use --force to replace it`,
    );
  }
  for (const n of present) await rm(path.join(out, n), { recursive: true, force: true });
}

function aidmasterRows(world: World, endMs: number): string[] {
  return world.hosts.map((h) =>
    JSON.stringify({
      aid: h.aid,
      aip: h.home.ip,
      cid: world.cid,
      event_platform: h.platform,
      AgentLoadFlags: '0',
      AgentLocalTime: secondsString(endMs - 3600000),
      AgentTimeOffset: '0.214',
      AgentVersion: h.agentVersion,
      BiosManufacturer: h.biosManufacturer,
      BiosVersion: h.biosVersion,
      ChassisType: h.chassisType,
      City: h.site.city,
      ComputerName: h.computerName,
      ConfigBuild: h.configBuild,
      ConfigIDBuild: h.configBuild.split('.')[2].replace(/^0+/, ''),
      Continent: h.site.continent,
      Country: h.site.country,
      FalconGroupingTags: h.role === 'server' ? 'FalconGroupingTags/servers' : 'FalconGroupingTags/endpoints',
      FirstSeen: secondsString(h.firstSeenMs),
      HostHiddenStatus: 'Visible',
      LocalAddressIP4: h.localIp,
      MAC: h.mac,
      MachineDomain: h.platform === 'Win' ? `${world.adDomain.toLowerCase()}.${world.companyDomain}` : 'none',
      OU: h.ou,
      PointerSize: h.platform === 'Win' ? '8' : 'none',
      ProductType: h.productType,
      SensorGroupingTags: h.knownServer ? 'known-server' : 'none',
      ServicePackMajor: h.platform === 'Win' ? '0' : 'none',
      SiteName: h.site.name,
      SystemManufacturer: h.systemManufacturer,
      SystemProductName: h.systemProductName,
      Time: secondsString(endMs - 600000),
      Timezone: h.site.timezone,
      Version: h.osVersion,
    }),
  );
}

function userinfoRows(world: World, endMs: number): string[] {
  return world.users.map((u) =>
    JSON.stringify({
      UserSid: u.sid,
      UserName: u.userName,
      AccountType: 'Domain User',
      LastLoggedOnHost: u.primaryHost?.computerName ?? '',
      LocalAdminAccess: u.isAdmin ? 'Yes' : 'No',
      LogonInfo: 'Domain User Logon',
      LogonTime: secondsString(endMs - 7200000),
      LogonType: u.isAdmin ? 'Remote Interactive' : 'Interactive',
      PasswordLastSet: secondsString(u.passwordLastSetMs),
      User: `${world.adDomain}\\${u.userName}`,
      UserIsAdmin: u.isAdmin ? '1' : '0',
      UserLogonFlags_decimal: '0',
      UserPrincipal: u.principal,
      _time: secondsString(endMs - 600000),
      cid: world.cid,
      event_platform: u.primaryHost?.platform ?? 'Win',
      monthsincereset: String(Math.round(((endMs - u.passwordLastSetMs) / (30 * DAY)) * 10) / 10),
    }),
  );
}

/** Splits `total` over weights by cumulative rounding (exact total, deterministic). */
function apportion(total: number, weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  let acc = 0;
  let given = 0;
  for (const w of weights) {
    acc += w;
    const upto = Math.round((total * acc) / sum);
    out.push(upto - given);
    given = upto;
  }
  return out;
}

export async function generateFdr(options: GenerateOptions): Promise<GenerateSummary> {
  const o = validate(options);
  const out = path.resolve(o.out);
  await prepareOut(out, o.force);
  const asnCsvPath = options.asnCsvPath ?? defaultAsnCsvPath();
  if (!existsSync(asnCsvPath)) throw new Error(`generate: ASN database ${asnCsvPath} not found`);

  const rng = new Rng(`talon-generate:${o.seed}`);
  const startMs = o.startMs;
  const endMs = startMs + Math.round(o.days * DAY);
  const learningEndMs = startMs + Math.round(o.learningDays * DAY);
  const world = await buildWorld(rng, { hosts: o.hosts, startMs, asnCsvPath });
  const factory = new EventFactory(world);
  bootProcesses(rng.fork('boot'), world, factory, startMs);
  const plan = planScenarios(rng, world, factory, { startMs, endMs, learningEndMs });
  const background = new BackgroundGenerator(world, factory);
  const truth = new GroundTruth({
    vulnerablePorts: DEFAULT_VULNERABLE_PORTS,
    knownServers: world.knownServers,
    learningEndMs,
    iocs: plan.iocs,
    aipOrg: world.aipOrg,
    computerNames: new Map(world.hosts.map((h) => [h.aid, h.computerName])),
  });
  const ids = rng.fork('batch-ids');
  const bucket = options.bucket ?? `cs-prod-cannon-${rng.fork('bucket').hex(12)}`;

  // Time slices: batch k covers [S + k·w, S + (k+1)·w); the background budget follows activity.
  const span = endMs - startMs;
  const sliceStart = (k: number, of: number, s: number, len: number): number =>
    s + Math.floor((len * k) / of);
  const batchWeights: number[] = [];
  for (let k = 0; k < o.batches; k++) {
    const a = sliceStart(k, o.batches, startMs, span);
    const b = sliceStart(k + 1, o.batches, startMs, span);
    // Integrate activity over the slice by the hour.
    let w = 0;
    for (let t = a; t < b; t += Math.min(3600000, b - t))
      w += BackgroundGenerator.intensity(t) * Math.min(3600000, b - t);
    batchWeights.push(Math.max(w, 1));
  }
  const backgroundTotal = Math.max(0, o.events - plan.planted.length);
  const backgroundPerBatch = apportion(backgroundTotal, batchWeights);

  const progress = o.progress
    ? new Progress('generate', { total: backgroundTotal + plan.planted.length, unit: 'events' })
    : undefined;
  const eventsByType: Record<string, number> = {};
  const dataPaths: string[] = [];
  const manifestPaths: string[] = [];
  let plantedIdx = 0;
  let total = 0;
  let dataFiles = 0;
  let bytes = 0;
  let uncompressed = 0;
  let maxInMemory = 0;

  for (let k = 0; k < o.batches; k++) {
    const a = sliceStart(k, o.batches, startMs, span);
    const b = sliceStart(k + 1, o.batches, startMs, span);
    let plantedEnd = plantedIdx;
    while (plantedEnd < plan.planted.length && plan.planted[plantedEnd].t < b) plantedEnd++;
    const batchTotal = backgroundPerBatch[k] + (plantedEnd - plantedIdx);
    // Several parts per batch, as FDR writes them; never more than partEvents per part.
    const parts = Math.max(batchTotal >= 2 ? 2 : 1, Math.ceil(batchTotal / o.partEvents));
    const backgroundPerPart = apportion(backgroundPerBatch[k], new Array<number>(parts).fill(1));
    const writer = new FdrBatchWriter(out, 'data', ids.uuid(), world.cid, bucket);
    for (let p = 0; p < parts; p++) {
      const pa = sliceStart(p, parts, a, b - a);
      const pb = sliceStart(p + 1, parts, a, b - a);
      // Each event is observed and serialised as soon as it is made; only (time, line) pairs stay
      // in memory until the part is sorted and written.
      const lines: { t: number; line: string }[] = [];
      const take = (t: number, e: FdrEvent): void => {
        truth.observe(e);
        eventsByType[e.event_simpleName] = (eventsByType[e.event_simpleName] ?? 0) + 1;
        lines.push({ t, line: JSON.stringify(e) });
      };
      while (plantedIdx < plan.planted.length && plan.planted[plantedIdx].t < pb) {
        const { t, e } = plan.planted[plantedIdx++];
        take(t, e);
      }
      background.generate(rng.fork(`part:${k}:${p}`), pa, pb, backgroundPerPart[p], take);
      lines.sort((x, y) => x.t - y.t);
      maxInMemory = Math.max(maxInMemory, lines.length);
      const ordered = function* (): Generator<string> {
        for (const l of lines) yield l.line;
      };
      const part = await writer.writePart(ordered());
      total += part.lines;
      dataFiles++;
      progress?.tick(part.lines);
    }
    const { manifestPath } = await writer.finish(b + 90_000);
    bytes += writer.totalSize;
    uncompressed += writer.uncompressedBytes;
    dataPaths.push(writer.pathPrefix);
    manifestPaths.push(manifestPath);
  }
  if (plantedIdx !== plan.planted.length) throw new Error('generate: planted events left over (bug)');

  // Secondary data: host inventory and users, as FDR publishes them beside the event batches.
  const aidmaster = new FdrBatchWriter(out, 'fdrv2/aidmaster', ids.uuid(), world.cid, bucket);
  await aidmaster.writePart(aidmasterRows(world, endMs));
  manifestPaths.push((await aidmaster.finish(endMs + 120_000)).manifestPath);
  const userinfo = new FdrBatchWriter(out, 'fdrv2/userinfo', ids.uuid(), world.cid, bucket);
  await userinfo.writePart(userinfoRows(world, endMs));
  manifestPaths.push((await userinfo.finish(endMs + 120_000)).manifestPath);
  bytes += aidmaster.totalSize + userinfo.totalSize;
  uncompressed += aidmaster.uncompressedBytes + userinfo.uncompressedBytes;

  await writeFile(path.join(out, 'iocs.csv'), iocsCsv(plan.iocs));
  const alerts = truth.alerts();
  const counts = { vulnerable_services: 0, new_logon_location: 0, ioc_match: 0 };
  for (const a of alerts) counts[a.detection]++;
  const groundTruth = buildGroundTruth({
    o,
    world,
    startMs,
    endMs,
    learningEndMs,
    asnCsvPath,
    alerts,
    decoys: plan.decoys,
    notes: plan.notes,
    total,
    iocCount: plan.iocs.length,
    counts,
  });
  await writeFile(path.join(out, 'ground-truth.json'), JSON.stringify(groundTruth, null, 2) + '\n');
  progress?.finish({ batches: o.batches, files: dataFiles });

  return {
    out,
    seed: String(o.seed),
    start: isoTime(startMs),
    end: isoTime(endMs),
    events: total,
    eventsByType: Object.fromEntries(Object.entries(eventsByType).sort(([x], [y]) => x.localeCompare(y))),
    batches: o.batches,
    files: dataFiles + 2 + manifestPaths.length + 2,
    dataFiles,
    bytes,
    uncompressedBytes: uncompressed,
    hosts: world.hosts.length,
    users: world.users.length,
    iocs: plan.iocs.length,
    alerts: counts,
    decoys: plan.decoys.length,
    maxEventsInMemory: maxInMemory,
    paths: {
      data: dataPaths,
      aidmaster: aidmaster.pathPrefix,
      userinfo: userinfo.pathPrefix,
      manifests: manifestPaths,
      iocs: 'iocs.csv',
      groundTruth: 'ground-truth.json',
    },
  };
}

interface GroundTruthInput {
  o: ReturnType<typeof validate>;
  world: World;
  startMs: number;
  endMs: number;
  learningEndMs: number;
  asnCsvPath: string;
  alerts: ExpectedAlert[];
  decoys: Decoy[];
  notes: string[];
  total: number;
  iocCount: number;
  counts: Record<string, number>;
}

function buildGroundTruth(g: GroundTruthInput): unknown {
  const { o, world } = g;
  return {
    format: 'talon-ground-truth/1',
    generator: {
      seed: String(o.seed),
      events: g.total,
      hosts: world.hosts.length,
      users: world.users.length,
      days: o.days,
      batches: o.batches,
      start: isoTime(g.startMs),
      end: isoTime(g.endMs),
      cid: world.cid,
    },
    parameters: {
      vulnerable_ports: [...DEFAULT_VULNERABLE_PORTS],
      known_servers: world.knownServers,
      learning_period: { days: o.learningDays, start: isoTime(g.startMs), end: isoTime(g.learningEndMs) },
      ioc_dedup_window_hours: IOC_DEDUP_WINDOW_MS / 3600000,
      ioc_window: 'first_seen <= timestamp <= coalesce(last_seen, now)',
      ioc_mappings: IOC_MAPPINGS,
      iocs_file: 'iocs.csv',
      iocs_columns: [...IOC_CSV_COLUMNS],
      iocs: g.iocCount,
      asn_database: asnDatabaseVersion(g.asnCsvPath),
      public_suffix_list: 'tldts getDomain (ICANN section only)',
    },
    derivation: DERIVATION,
    counts: g.counts,
    alerts: g.alerts,
    decoys: g.decoys,
    notes: g.notes,
    hosts: world.hosts.map((h) => ({
      aid: h.aid,
      ComputerName: h.computerName,
      platform: h.platform,
      role: h.role,
      site: h.site.name,
      aip: h.home.ip,
      as_org: h.home.asOrg,
      known_server: h.knownServer ?? null,
      travel: h.travel.map((t) => ({
        from: isoTime(t.fromMs),
        to: isoTime(t.toMs),
        aip: t.net.ip,
        as_org: t.net.asOrg,
        purpose: t.purpose,
      })),
    })),
    users: world.users.map((u) => ({
      UserName: u.userName,
      UserSid: u.sid,
      admin: u.isAdmin,
      hosts: u.logonHosts.map((h) => h.computerName),
    })),
  };
}

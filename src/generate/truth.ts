/**
 * Ground truth for the seed's three detections, computed from every event the generator writes
 * (not from the scenario plan), so it is what a correct detector must find in the files — no more,
 * no fewer. The semantics are spelled out in `DERIVATION`, which is also written into
 * ground-truth.json.
 */
import { getDomain } from 'tldts';
import { ipInList, type PublicAddress } from './asn.js';
import type { FdrEvent } from './events.js';

export const DEFAULT_VULNERABLE_PORTS = [3389, 139, 445, 2598, 1494] as const;
export const IOC_DEDUP_WINDOW_MS = 24 * 3600 * 1000;

/**
 * The seed's ioc_mappings (plus ProcessRollup2 hashes, as issue 4 asks): table → [field, ioc_type].
 * `DomainName_psl.registered_domain` is the registered domain of DomainName per the Public Suffix
 * List (ICANN section), as the enrichment computes it.
 */
export const IOC_MAPPINGS: Record<string, [field: string, iocType: string][]> = {
  SyntheticProcessRollup2: [
    ['MD5HashData', 'FileHash-MD5'],
    ['SHA256HashData', 'FileHash-SHA256'],
  ],
  ProcessRollup2: [
    ['MD5HashData', 'FileHash-MD5'],
    ['SHA256HashData', 'FileHash-SHA256'],
  ],
  SuspiciousPeFileWritten: [['SHA256HashData', 'FileHash-SHA256']],
  SuspiciousRegAsepUpdate: [['TargetSHA256HashData', 'FileHash-SHA256']],
  DnsRequest: [
    ['DomainName', 'hostname'],
    ['DomainName_psl.registered_domain', 'domain'],
    ['FirstIP4Record', 'IPv4'],
  ],
  NetworkConnectIP4: [['RemoteAddressIP4', 'IPv4']],
  NetworkReceiveAcceptIP4: [['RemoteAddressIP4', 'IPv4']],
};

export const DERIVATION = {
  event_time:
    'Every detection uses the event field `timestamp` (epoch milliseconds, cloud receive time); ' +
    'event_time is its ISO-8601 form.',
  vulnerable_services:
    'One alert per NetworkListenIP4/NetworkListenIP6 event whose LocalPort is in parameters.vulnerable_ports ' +
    'and whose aip is not in parameters.known_servers (an entry is an exact IPv4 address or an IPv4 CIDR). ' +
    'The generator never repeats an alerting (aid, LocalPort) pair, so per-event and per-(aid, LocalPort) ' +
    'detectors expect the same list.',
  new_logon_location:
    'UserLogon events grouped by (UserName, network) where network = aip_as.as_org, the as_org of the ' +
    'row of the bundled ASN CSV (parameters.asn_database) whose range contains aip. A pair alerts once, ' +
    'at its earliest logon, iff that earliest logon is at or after parameters.learning_period.end ' +
    '(= data start + learning_days); pairs first seen inside the learning period are the baseline. ' +
    'Every user first logs on within the first hour of the data, so a per-user learning period ' +
    '(first logon + learning_days) gives the same alerts. event_time is the first logon from the new ' +
    'network; last_event_time the last one in the data (a detector that takes max(timestamp) per ' +
    'micro-batch reports a time between the two).',
  ioc_match:
    'Each event of a table in parameters.ioc_mappings explodes into one (aid, ioc_type, ioc) row per ' +
    'non-empty mapped field. Rows are de-duplicated per (aid, ioc_type, ioc) in event-time order: a row ' +
    "within 24 h after the last kept row of the same key is dropped (the seed's 24 h dropDuplicates). " +
    'Kept rows join iocs.csv on ioc_type and ioc where first_seen <= timestamp <= last_seen (an empty ' +
    'last_seen is open-ended). One alert per joined row. Planted out-of-window events are never within ' +
    '48 h of an in-window row of the same key, so de-duplicating before or after the join agrees.',
} as const;

export interface IocEntry {
  dataset: string;
  ioc: string;
  ioc_type: string;
  ioc_id: string;
  first_seen: string;
  last_seen: string;
  description: string;
}

export interface VulnerableServiceAlert {
  detection: 'vulnerable_services';
  aid: string;
  ComputerName: string;
  aip: string;
  LocalPort: number;
  event_simpleName: string;
  event_id: string;
  timestamp: string;
  event_time: string;
}

export interface NewLogonLocationAlert {
  detection: 'new_logon_location';
  aid: string;
  ComputerName: string;
  user: string;
  UserName: string;
  network: string;
  as_number: number;
  aip: string;
  event_id: string;
  timestamp: string;
  event_time: string;
  last_event_time: string;
  logons: number;
}

export interface IocMatchAlert {
  detection: 'ioc_match';
  aid: string;
  ComputerName: string;
  ioc_type: string;
  ioc: string;
  ioc_id: string;
  dataset: string;
  field: string;
  event_simpleName: string;
  event_id: string;
  timestamp: string;
  event_time: string;
}

export type ExpectedAlert = VulnerableServiceAlert | NewLogonLocationAlert | IocMatchAlert;

interface IocCandidate {
  t: number;
  seq: number;
  aid: string;
  iocType: string;
  ioc: string;
  field: string;
  event: string;
  id: string;
}

export interface TruthParameters {
  vulnerablePorts: readonly number[];
  knownServers: readonly string[];
  learningEndMs: number;
  iocs: readonly IocEntry[];
  aipOrg: ReadonlyMap<string, PublicAddress>;
  computerNames: ReadonlyMap<string, string>;
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** Registered domain (PSL, ICANN section) of a DNS name, '' when it has none. */
export function registeredDomain(name: string): string {
  return getDomain(name.replace(/\.$/, '')) ?? '';
}

export class GroundTruth {
  private readonly vulnerable: VulnerableServiceAlert[] = [];
  private readonly logons = new Map<
    string,
    {
      user: string;
      org: string;
      asNumber: number;
      first: FdrEvent;
      firstT: number;
      lastT: number;
      count: number;
    }
  >();
  private readonly iocIndex = new Map<string, IocEntry>();
  private readonly candidates: IocCandidate[] = [];
  private readonly ports: Set<number>;
  private readonly domainCache = new Map<string, string>();
  private seq = 0;

  constructor(private readonly p: TruthParameters) {
    this.ports = new Set(p.vulnerablePorts);
    for (const e of p.iocs) this.iocIndex.set(`${e.ioc_type}\u0000${e.ioc}`, e);
  }

  observe(e: FdrEvent): void {
    const type = e.event_simpleName;
    const t = Number(e.timestamp);
    if (type === 'NetworkListenIP4' || type === 'NetworkListenIP6') {
      const port = Number(e.LocalPort);
      if (this.ports.has(port) && !ipInList(e.aip, this.p.knownServers)) {
        this.vulnerable.push({
          detection: 'vulnerable_services',
          aid: e.aid,
          ComputerName: this.p.computerNames.get(e.aid) ?? '',
          aip: e.aip,
          LocalPort: port,
          event_simpleName: type,
          event_id: e.id,
          timestamp: e.timestamp,
          event_time: isoTime(t),
        });
      }
    } else if (type === 'UserLogon') {
      const net = this.p.aipOrg.get(e.aip);
      if (!net) throw new Error(`ground truth: no AS org known for aip ${e.aip}`);
      const key = `${e.UserName}\u0000${net.asOrg}`;
      const cur = this.logons.get(key);
      if (!cur) {
        this.logons.set(key, {
          user: e.UserName,
          org: net.asOrg,
          asNumber: net.asNumber,
          first: e,
          firstT: t,
          lastT: t,
          count: 1,
        });
      } else {
        if (t < cur.firstT) {
          cur.first = e;
          cur.firstT = t;
        }
        if (t > cur.lastT) cur.lastT = t;
        cur.count++;
      }
    }
    const mapping = IOC_MAPPINGS[type];
    if (!mapping) return;
    for (const [field, iocType] of mapping) {
      let value: string;
      if (field === 'DomainName_psl.registered_domain') {
        const name = e.DomainName ?? '';
        let d = this.domainCache.get(name);
        if (d === undefined) {
          d = registeredDomain(name);
          if (this.domainCache.size < 100_000) this.domainCache.set(name, d);
        }
        value = d;
      } else {
        value = e[field] ?? '';
      }
      if (value === '' || !this.iocIndex.has(`${iocType}\u0000${value}`)) continue;
      this.candidates.push({
        t,
        seq: this.seq++,
        aid: e.aid,
        iocType,
        ioc: value,
        field,
        event: type,
        id: e.id,
      });
    }
  }

  /** Planted IoC rows seen so far (matching an IoC value, in or out of its window). */
  get iocRowsSeen(): number {
    return this.candidates.length;
  }

  alerts(): ExpectedAlert[] {
    const out: ExpectedAlert[] = [...this.vulnerable];
    for (const l of this.logons.values()) {
      if (l.firstT < this.p.learningEndMs) continue;
      out.push({
        detection: 'new_logon_location',
        aid: l.first.aid,
        ComputerName: this.p.computerNames.get(l.first.aid) ?? '',
        user: l.user,
        UserName: l.user,
        network: l.org,
        as_number: l.asNumber,
        aip: l.first.aip,
        event_id: l.first.id,
        timestamp: l.first.timestamp,
        event_time: isoTime(l.firstT),
        last_event_time: isoTime(l.lastT),
        logons: l.count,
      });
    }
    const rows = this.candidates.slice().sort((a, b) => a.t - b.t || a.seq - b.seq);
    const lastKept = new Map<string, number>();
    for (const r of rows) {
      const key = `${r.aid}\u0000${r.iocType}\u0000${r.ioc}`;
      const prev = lastKept.get(key);
      if (prev !== undefined && r.t - prev < IOC_DEDUP_WINDOW_MS) continue;
      lastKept.set(key, r.t);
      const ioc = this.iocIndex.get(`${r.iocType}\u0000${r.ioc}`)!;
      const from = Date.parse(ioc.first_seen);
      const to = ioc.last_seen === '' ? Infinity : Date.parse(ioc.last_seen);
      if (r.t < from || r.t > to) continue;
      out.push({
        detection: 'ioc_match',
        aid: r.aid,
        ComputerName: this.p.computerNames.get(r.aid) ?? '',
        ioc_type: r.iocType,
        ioc: r.ioc,
        ioc_id: ioc.ioc_id,
        dataset: ioc.dataset,
        field: r.field,
        event_simpleName: r.event,
        event_id: r.id,
        timestamp: String(r.t),
        event_time: isoTime(r.t),
      });
    }
    const order = { vulnerable_services: 0, new_logon_location: 1, ioc_match: 2 } as const;
    return out.sort(
      (a, b) =>
        order[a.detection] - order[b.detection] ||
        Number(a.timestamp) - Number(b.timestamp) ||
        a.aid.localeCompare(b.aid) ||
        a.event_id.localeCompare(b.event_id),
    );
  }
}

/** CSV cell quoting (RFC 4180). */
export function csvCell(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export const IOC_CSV_COLUMNS = [
  'dataset',
  'ioc',
  'ioc_type',
  'ioc_id',
  'first_seen',
  'last_seen',
  'description',
] as const;

export function iocsCsv(iocs: readonly IocEntry[]): string {
  const lines = [IOC_CSV_COLUMNS.join(',')];
  for (const e of iocs) lines.push(IOC_CSV_COLUMNS.map((c) => csvCell(e[c])).join(','));
  return lines.join('\n') + '\n';
}

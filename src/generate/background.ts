/**
 * Everyday telemetry around the planted scenarios: processes starting and ending, their DNS lookups
 * and connections (ContextProcessId = the process's TargetProcessId), services listening, servers
 * accepting connections, users logging on to their usual hosts, sensor heartbeats.
 *
 * Background activity is kept out of the detections' way on purpose — vulnerable ports are only
 * opened by known servers, logons only come from networks a user already has, remote addresses never
 * come from the IoC pool — so every alert in ground-truth.json traces back to a planted scenario.
 */
import type { EventFactory, FdrEvent } from './events.js';
import type { Rng } from './prng.js';
import { HOUR } from './scenarios.js';
import { aipAt, TRANSIENT_SETS, type DnsName, type Host, type LiveProcess, type World } from './world.js';

type Activity =
  | 'browse'
  | 'process'
  | 'end'
  | 'connect'
  | 'connect6'
  | 'accept'
  | 'listen'
  | 'logon'
  | 'logonfail'
  | 'synthetic'
  | 'suspicious-pe'
  | 'reg-asep'
  | 'heartbeat'
  | 'agent-online';

const ACTIVITIES: [Activity, number][] = [
  ['browse', 30],
  ['process', 17],
  ['end', 4],
  ['connect', 12],
  ['connect6', 3],
  ['accept', 5],
  ['listen', 4],
  ['logon', 1.6],
  ['logonfail', 0.8],
  ['synthetic', 2],
  ['suspicious-pe', 0.3],
  ['reg-asep', 0.3],
  ['heartbeat', 5],
  ['agent-online', 0.2],
];

const LISTEN_PORTS: Record<string, number[]> = {
  'Win:workstation': [135, 5040, 7680, 49664, 49665, 49666, 49667, 49668, 5357],
  'Win:laptop': [135, 5040, 7680, 49664, 49665, 49666, 49667, 49668, 5357],
  'Win:server': [135, 5985, 443, 80, 1433, 49664, 49665, 49666, 47001],
  'Mac:laptop': [7000, 5000, 49152, 49153, 55448],
  'Lin:server': [22, 80, 443, 8080, 9100, 5432],
};
/** Known servers run the very services the detection watches; that is why they are listed. */
const KNOWN_SERVER_PORTS = [3389, 445, 139, 3389, 445, 1494, 2598];

const IPV6_PREFIXES = [
  '2607:f8b0:4004:c1b',
  '2a00:1450:4001:82b',
  '2603:1036:303:2850',
  '2600:1f18:24e6:b900',
  '2606:4700:3033',
];

export class BackgroundGenerator {
  private readonly servers: Host[];
  private readonly endpoints: Host[];

  constructor(
    private readonly world: World,
    private readonly factory: EventFactory,
  ) {
    this.servers = world.hosts.filter((h) => h.role === 'server');
    this.endpoints = world.hosts.filter((h) => h.role !== 'server');
  }

  private activeHour = -1;
  private activeEndpoints: Host[] = [];
  private readonly domainPools = new Map<string, DnsName[]>();

  /** Endpoints whose users are at work (local 07–19 h, Monday to Friday) during the hour of `t`. */
  private endpointsActiveAt(t: number): Host[] {
    const hourIndex = Math.floor(t / HOUR);
    if (hourIndex !== this.activeHour) {
      this.activeHour = hourIndex;
      this.activeEndpoints = this.endpoints.filter((h) => {
        const hour = (((hourIndex + h.site.utcOffset) % 24) + 24) % 24;
        const weekday = new Date((hourIndex + h.site.utcOffset) * HOUR).getUTCDay();
        return hour >= 7 && hour < 19 && weekday !== 0 && weekday !== 6;
      });
    }
    return this.activeEndpoints;
  }

  /** Local hour-of-day activity of people (workstations) vs machines (servers, always on). */
  private pickHost(rng: Rng, t: number): Host {
    const endpointsActive = this.endpointsActiveAt(t);
    // Active people generate most events; idle endpoints and servers keep a steady trickle.
    if (endpointsActive.length > 0 && rng.chance(0.7)) return rng.pick(endpointsActive);
    if (rng.chance(0.6)) return rng.pick(this.servers);
    return rng.pick(this.endpoints);
  }

  /** Relative amount of activity at time `t` (for splitting the event budget over time slices). */
  static intensity(t: number): number {
    const hour = Math.floor(t / HOUR) % 24;
    const weekday = new Date(t).getUTCDay();
    const working = hour >= 6 && hour < 22 && weekday !== 0 && weekday !== 6;
    return working ? 1 : 0.35;
  }

  /**
   * Makes `n` background events with timestamps in [t0, t1), unsorted, handing each to `sink` as it
   * is made (so the caller can serialise it at once and keep only the line).
   */
  generate(rng: Rng, t0: number, t1: number, n: number, sink: (t: number, e: FdrEvent) => void): void {
    const width = Math.max(1, t1 - t0);
    let made = 0;
    let guard = 0;
    const emitAt =
      (t: number) =>
      (dt: number, make: (tt: number) => FdrEvent | undefined): void => {
        if (made >= n) return;
        const tt = Math.min(t1 - 1, t + dt);
        const e = make(tt);
        if (e) {
          made++;
          sink(tt, e);
        }
      };
    while (made < n) {
      if (++guard > n * 50 + 1000) throw new Error('generate: background generator made no progress');
      const t = t0 + Math.floor(rng.next() * width);
      const host = this.pickHost(rng, t);
      this.activity(rng, rng.weighted(ACTIVITIES), host, t, emitAt(t));
    }
  }

  private pickProcess(rng: Rng, host: Host, kinds: readonly string[]): LiveProcess {
    const matching = host.live.filter((p) => kinds.includes(p.binary.kind));
    return matching.length > 0 ? rng.pick(matching) : rng.pick(host.live);
  }

  private pickDomain(rng: Rng, host: Host, p: LiveProcess): DnsName {
    const kinds: DnsName['kind'][] =
      host.platform === 'Lin'
        ? ['linux', 'dev', 'aws']
        : host.platform === 'Mac'
          ? ['apple', 'web', 'google', 'dev', 'corp']
          : p.binary.kind === 'browser'
            ? ['web', 'google', 'microsoft', 'dev', 'corp', 'aws']
            : p.binary.kind === 'office'
              ? ['microsoft', 'corp']
              : ['microsoft', 'google'];
    const key = kinds.join(',');
    let pool = this.domainPools.get(key);
    if (!pool) {
      pool = this.world.dns.filter((d) => kinds.includes(d.kind));
      if (pool.length === 0) pool = this.world.dns;
      this.domainPools.set(key, pool);
    }
    return rng.pick(pool);
  }

  private activity(
    rng: Rng,
    what: Activity,
    host: Host,
    t: number,
    emit: (dt: number, make: (tt: number) => FdrEvent | undefined) => void,
  ): void {
    const f = this.factory;
    switch (what) {
      case 'browse': {
        const p = this.pickProcess(rng, host, ['browser', 'office', 'service', 'tool', 'server-app']);
        const d = this.pickDomain(rng, host, p);
        const nx = rng.chance(0.04);
        emit(0, (tt) =>
          f.dnsRequest(rng, host, tt, p, nx ? `wpad.${this.world.companyDomain}` : d.name, nx ? [] : d.ips),
        );
        if (!nx && rng.chance(0.85)) {
          const conns = rng.int(1, 2);
          for (let i = 0; i < conns; i++) {
            emit(rng.int(30, 900), (tt) =>
              f.networkConnectIP4(rng, host, tt, p, rng.pick(d.ips), rng.chance(0.9) ? 443 : 80),
            );
          }
        }
        return;
      }
      case 'process': {
        const binKey = rng.pick(TRANSIENT_SETS[host.platform]);
        const bin = this.world.binaries.get(binKey)!;
        const parent = this.pickProcess(rng, host, ['shell', 'service']);
        const proc = f.newProcess(rng, host, bin, parent, t - rng.int(50, 400), true);
        const user = host.owner && host.role !== 'server' ? host.owner : undefined;
        emit(0, (tt) => f.processRollup2(rng, host, tt, proc, user));
        if (
          bin.base === 'git.exe' ||
          bin.base === 'git' ||
          bin.base === 'curl' ||
          bin.base === 'apt-get' ||
          bin.base.startsWith('python')
        ) {
          const d = this.pickDomain(rng, host, proc);
          emit(rng.int(20, 300), (tt) => f.dnsRequest(rng, host, tt, proc, d.name, d.ips));
          emit(rng.int(300, 900), (tt) => f.networkConnectIP4(rng, host, tt, proc, rng.pick(d.ips), 443));
        }
        if (rng.chance(0.75)) {
          emit(rng.int(1000, 600000), (tt) => f.endOfProcess(rng, host, tt, proc));
        } else {
          host.live.push(proc);
          if (host.live.length > 40)
            host.live.splice(
              host.live.findIndex((x) => x.transient),
              1,
            );
        }
        return;
      }
      case 'end': {
        const idx = host.live.findIndex((p) => p.transient);
        if (idx < 0) return;
        const [proc] = host.live.splice(idx, 1);
        emit(0, (tt) => f.endOfProcess(rng, host, tt, proc));
        return;
      }
      case 'connect': {
        const p = this.pickProcess(rng, host, ['service', 'browser', 'office', 'server-app']);
        const remote = rng.pick(this.world.benignRemote);
        const dns = rng.chance(0.1);
        emit(0, (tt) =>
          f.networkConnectIP4(
            rng,
            host,
            tt,
            p,
            remote.ip,
            dns ? 53 : rng.pick([443, 443, 443, 80, 8443]),
            dns,
          ),
        );
        return;
      }
      case 'connect6': {
        const p = this.pickProcess(rng, host, ['browser', 'service', 'office']);
        const ip6 = `${rng.pick(IPV6_PREFIXES)}::${rng.hex(rng.int(2, 4)).replace(/^0+(?=.)/, '')}`;
        emit(0, (tt) => f.networkConnectIP6(rng, host, tt, p, ip6, 443));
        return;
      }
      case 'accept': {
        if (host.role === 'server') {
          const p = this.pickProcess(rng, host, ['server-app', 'service']);
          const client = rng.chance(0.5)
            ? rng.pick(this.world.benignRemote).ip
            : aipAt(rng.pick(this.endpoints), t).ip;
          const port = host.platform === 'Lin' ? rng.pick([443, 80, 22]) : rng.pick([443, 80, 5985, 1433]);
          emit(0, (tt) => f.networkReceiveAcceptIP4(rng, host, tt, p, port, client));
        } else {
          // Peer traffic inside the office (SMB, RPC) arrives from private addresses.
          const p = this.pickProcess(rng, host, ['service', 'system']);
          const peer = `${host.localIp.split('.').slice(0, 2).join('.')}.${rng.int(1, 30)}.${rng.int(10, 250)}`;
          emit(0, (tt) => f.networkReceiveAcceptIP4(rng, host, tt, p, rng.pick([135, 49668, 5040]), peer));
        }
        return;
      }
      case 'listen': {
        const ports =
          host.knownServer && rng.chance(0.5)
            ? KNOWN_SERVER_PORTS
            : (LISTEN_PORTS[`${host.platform}:${host.role}`] ?? LISTEN_PORTS['Win:workstation']);
        const port = rng.pick(ports);
        const p = this.pickProcess(rng, host, ['service', 'system', 'server-app']);
        emit(0, (tt) => f.networkListen(rng, host, tt, p, port, rng.chance(0.3)));
        return;
      }
      case 'logon': {
        const candidates = this.world.users.filter((u) => u.logonHosts.includes(host));
        if (candidates.length === 0) return;
        const user = rng.pick(candidates);
        // Logons only from networks the user already has: none while a laptop is away.
        if (aipAt(host, t) !== host.home) return;
        const lsass = host.live.find(
          (p) => p.binary.base === 'lsass.exe' || p.binary.base === 'launchd' || p.binary.base === 'sshd',
        );
        const type = host.role === 'server' ? rng.pick([10, 3]) : rng.pick([2, 7, 7, 11]);
        emit(0, (tt) =>
          aipAt(host, tt) === host.home ? f.userLogon(rng, host, tt, user, type, lsass) : undefined,
        );
        return;
      }
      case 'logonfail': {
        if (host.role === 'server') {
          const src = rng.pick([
            ...this.world.homeIsps,
            ...this.world.hotelNets,
            ...this.world.benignRemote,
          ]).ip;
          const name = rng.pick(['administrator', 'admin', 'test', 'user', 'backup', 'sql']);
          emit(0, (tt) => f.userLogonFailed2(rng, host, tt, name, src, 3));
        } else if (host.owner) {
          const owner = host.owner;
          emit(0, (tt) => f.userLogonFailed2(rng, host, tt, owner.userName, '127.0.0.1', 2));
        }
        return;
      }
      case 'synthetic': {
        const p = rng.pick(host.live);
        emit(0, (tt) => f.syntheticProcessRollup2(rng, host, tt, p));
        return;
      }
      case 'suspicious-pe': {
        if (host.platform !== 'Win') return;
        const p = this.pickProcess(rng, host, ['tool', 'browser']);
        const name = rng.pick([
          'setup.exe',
          'installer.exe',
          'update.exe',
          'GoogleUpdateSetup.exe',
          'TeamsSetup_c_w_.exe',
        ]);
        const dir = rng.pick([
          '\\Device\\HarddiskVolume3\\Windows\\Temp\\',
          `\\Device\\HarddiskVolume3\\Users\\${host.owner?.userName ?? 'Public'}\\AppData\\Local\\Temp\\`,
        ]);
        emit(0, (tt) =>
          f.suspiciousPeFileWritten(
            rng,
            host,
            tt,
            p,
            `${dir}${rng.hex(8)}\\${name}`,
            rng.hex(64),
            rng.hex(32),
          ),
        );
        return;
      }
      case 'reg-asep': {
        if (host.platform !== 'Win') return;
        const p = this.pickProcess(rng, host, ['office', 'tool']);
        const [valueName, file] = rng.pick([
          ['OneDrive', '\\Device\\HarddiskVolume3\\Program Files\\Microsoft OneDrive\\OneDrive.exe'],
          [
            'com.squirrel.Teams.Teams',
            `\\Device\\HarddiskVolume3\\Users\\${host.owner?.userName ?? 'Public'}\\AppData\\Local\\Microsoft\\Teams\\Update.exe`,
          ],
          [
            'GoogleUpdate',
            '\\Device\\HarddiskVolume3\\Program Files (x86)\\Google\\Update\\GoogleUpdate.exe',
          ],
        ] as const);
        const target = this.world.binaries.get('win:onedrive')!;
        emit(0, (tt) =>
          f.suspiciousRegAsepUpdate(
            rng,
            host,
            tt,
            p,
            valueName,
            file,
            valueName === 'OneDrive' ? target.sha256 : rng.hex(64),
            host.owner?.sid ?? 'S-1-5-18',
          ),
        );
        return;
      }
      case 'heartbeat':
        emit(0, (tt) => f.sensorHeartbeat(rng, host, tt));
        return;
      case 'agent-online':
        emit(0, (tt) => f.agentOnline(rng, host, tt));
        return;
    }
  }
}

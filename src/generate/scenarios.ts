/**
 * The planted part of the data: sensor start-up on every host, each user's first logons (the
 * baseline), and the attack scenarios with their decoys for the seed's three detections —
 * vulnerable services started on unknown hosts, logons from new networks, and IoC hits.
 *
 * Planted events are few (hundreds) and built up front; the background generator fills the rest.
 * The ground truth does not trust this plan: it is recomputed from every written event.
 */
import type { PublicAddress } from './asn.js';
import type { EventFactory, FdrEvent } from './events.js';
import type { Rng } from './prng.js';
import { registeredDomain, type IocEntry } from './truth.js';
import { aipAt, type Host, type LiveProcess, type User, type World } from './world.js';

export const HOUR = 3600 * 1000;
export const DAY = 24 * HOUR;

export interface PlantedEvent {
  t: number;
  e: FdrEvent;
}

/** Something planted that must NOT raise an alert, recorded for whoever checks the detectors. */
export interface Decoy {
  detection: 'vulnerable_services' | 'new_logon_location' | 'ioc_match';
  reason: string;
  aid: string;
  event_id: string;
  event_time: string;
  [key: string]: string | number;
}

export interface ScenarioPlan {
  planted: PlantedEvent[];
  iocs: IocEntry[];
  decoys: Decoy[];
  notes: string[];
}

export interface ScenarioWindow {
  startMs: number;
  endMs: number;
  learningEndMs: number;
}

const SYLLABLES = [
  'vor',
  'tek',
  'ka',
  'lum',
  'zar',
  'mi',
  'qui',
  'dro',
  'nex',
  'sal',
  'pha',
  'rio',
  'tan',
  'bel',
  'cor',
  'dex',
  'ulo',
  'gri',
  'sen',
  'tav',
];
const DOMAIN_WORDS = [
  'cdn',
  'update',
  'sync',
  'cloud',
  'secure',
  'portal',
  'login',
  'mail',
  'files',
  'static',
];
const SUFFIXES = [
  '.co.uk',
  '.com.au',
  '.com',
  '.net',
  '.xyz',
  '.top',
  '.info',
  '.co.jp',
  '.com.br',
  '.biz',
  '.org.uk',
  '.co.za',
];
const HOST_LABELS = ['update', 'files', 'dl', 'api', 'cdn', 'login', 'static', 'relay'];

function word(rng: Rng): string {
  let w = '';
  const n = rng.int(2, 3);
  for (let i = 0; i < n; i++) w += rng.pick(SYLLABLES);
  return w;
}

/** A fresh registered domain under a real public suffix (e.g. `vortekka-sync.co.uk`). */
function maliciousDomain(rng: Rng, used: Set<string>): string {
  for (;;) {
    const d = `${word(rng)}-${rng.pick(DOMAIN_WORDS)}${rng.int(0, 1) ? String(rng.int(2, 99)) : ''}${rng.pick(SUFFIXES)}`;
    if (!used.has(d) && registeredDomain(d) === d) {
      used.add(d);
      return d;
    }
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function bootProcesses(rng: Rng, world: World, factory: EventFactory, startMs: number): void {
  for (const host of world.hosts) {
    host.live = [];
    const bootMs = startMs - rng.int(2, 72) * HOUR;
    let services: LiveProcess | undefined;
    let shell: LiveProcess | undefined;
    for (const b of host.bootBinaries) {
      const parent =
        b.kind === 'browser' || b.kind === 'office' ? shell : b.kind === 'system' ? undefined : services;
      const p = factory.newProcess(rng, host, b, parent, bootMs + rng.int(0, 120000), false);
      if (b.base === 'services.exe' || b.base === 'launchd' || b.base === 'systemd') services = p;
      if (b.kind === 'shell') shell = p;
      host.live.push(p);
    }
  }
}

export function liveByBase(host: Host, base: string): LiveProcess | undefined {
  return host.live.find((p) => p.binary.base === base);
}

function liveByCommand(host: Host, fragment: string): LiveProcess | undefined {
  return host.live.find((p) => p.binary.commandLine.includes(fragment));
}

export function planScenarios(
  rng: Rng,
  world: World,
  factory: EventFactory,
  win: ScenarioWindow,
): ScenarioPlan {
  const r = rng.fork('scenarios');
  const planted: PlantedEvent[] = [];
  const decoys: Decoy[] = [];
  const notes: string[] = [];
  const { startMs: S, endMs: E, learningEndMs: L } = win;
  const span = E - S;
  const add = (t: number, e: FdrEvent): FdrEvent => {
    if (t < S || t >= E) throw new Error(`generate: planted event at ${iso(t)} outside the data window`);
    planted.push({ t, e });
    return e;
  };
  const decoy = (d: Omit<Decoy, 'event_id' | 'event_time' | 'aid'>, e: FdrEvent): void => {
    decoys.push({ ...d, aid: e.aid, event_id: e.id, event_time: iso(Number(e.timestamp)) } as Decoy);
  };
  const byName = (name: string): Host => {
    const h = world.hosts.find((x) => x.computerName === name);
    if (!h) throw new Error(`generate: host ${name} missing`);
    return h;
  };
  const knownByIp = byName('SRV-RDS01');
  const knownByCidr = byName('SRV-CTX01');
  const unknownServer = byName('SRV-APP07');
  const linuxVda = byName('vda-lnx01');
  const endpoints = world.hosts.filter((h) => h.role !== 'server');
  const winDesktop = endpoints.find((h) => h.platform === 'Win' && h.role === 'workstation')!;
  const winLaptop = endpoints.find((h) => h.platform === 'Win' && h.role === 'laptop')!;
  const macLaptop = endpoints.find((h) => h.platform === 'Mac')!;
  const extraLaptops = endpoints.filter((h) => h.role === 'laptop' && h !== winLaptop && h !== macLaptop);
  const otherEndpoints = endpoints.filter((h) => h !== winDesktop && h !== winLaptop && h !== macLaptop);

  // --- Sensor start: AgentOnline, then a SyntheticProcessRollup2 per process already running.
  for (const host of world.hosts) {
    let t = S + r.int(1000, 10 * 60 * 1000);
    add(t, factory.agentOnline(r, host, t));
    for (const p of host.live) {
      t += r.int(5, 400);
      add(t, factory.syntheticProcessRollup2(r, host, t, p));
    }
  }

  // --- Travel episodes (set before any event is built: they decide the hosts' aip).
  const travelAttackAt = L + 3 * HOUR + r.int(0, Math.max(0, Math.floor((E - L - 30 * HOUR) / 2)));
  const logonAttacksFit = L + 4 * HOUR < E - 26 * HOUR;
  const learningDecoyFits = L - S >= 8 * HOUR;
  const hotel = world.hotelNets[0];
  const homeDecoyNet = world.homeIsps[0];
  const homeAttackNet = world.homeIsps[1];
  if (logonAttacksFit) {
    winLaptop.travel.push({
      fromMs: travelAttackAt,
      toMs: travelAttackAt + 20 * HOUR,
      net: hotel,
      purpose: 'travel (attack)',
    });
  }
  let decoyReturnAt = 0;
  if (learningDecoyFits) {
    const from = S + 2 * HOUR + r.int(0, 60) * 60000 + r.int(0, 59999);
    macLaptop.travel.push({
      fromMs: from,
      toMs: from + 4 * HOUR,
      net: homeDecoyNet,
      purpose: 'working from home (learning)',
    });
    if (L + 2 * HOUR < E - 10 * HOUR) {
      decoyReturnAt =
        L +
        2 * HOUR +
        r.int(0, Math.max(0, Math.floor((E - L - 12 * HOUR) / 60000))) * 60000 +
        r.int(0, 59999);
      macLaptop.travel.push({
        fromMs: decoyReturnAt,
        toMs: decoyReturnAt + 8 * HOUR,
        net: homeDecoyNet,
        purpose: 'working from home again',
      });
    }
  }
  const homeAttackHost = extraLaptops[0];
  let homeAttackAt = 0;
  if (logonAttacksFit && homeAttackHost) {
    homeAttackAt =
      L + 5 * HOUR + r.int(0, Math.max(0, Math.floor((E - L - 30 * HOUR) / 60000))) * 60000 + r.int(0, 59999);
    homeAttackHost.travel.push({
      fromMs: homeAttackAt,
      toMs: homeAttackAt + 6 * HOUR,
      net: homeAttackNet,
      purpose: 'new home network',
    });
  }

  // --- Baseline: every user logs on to each of their hosts within the first hour.
  for (const u of world.users) {
    for (const h of u.logonHosts) {
      const t = S + r.int(10, 58) * 60000 + r.int(0, 59999);
      add(t, factory.userLogon(r, h, t, u, h.role === 'server' ? 10 : 2, liveByBase(h, 'lsass.exe')));
    }
  }

  // --- Scenario 1: vulnerable services.
  const vulnTime = (): number =>
    S + 2 * HOUR + r.int(0, Math.floor((span - 4 * HOUR) / 1000)) * 1000 + r.int(0, 999);
  {
    const system = (h: Host): LiveProcess => liveByBase(h, 'ntoskrnl.exe') ?? h.live[0];
    // Alerts: unknown cloud server with RDP (IPv4) and SMB (IPv6).
    let t = vulnTime();
    add(
      t,
      factory.networkListen(
        r,
        unknownServer,
        t,
        liveByCommand(unknownServer, 'termsvcs') ?? system(unknownServer),
        3389,
        false,
      ),
    );
    t = vulnTime();
    add(t, factory.networkListen(r, unknownServer, t, system(unknownServer), 445, true));
    // Alert: a desktop where someone turned on Remote Desktop (TermService starts, then listens).
    t = vulnTime();
    const termsvc = factory.newProcess(
      r,
      winDesktop,
      world.binaries.get('win:svchost-termsvcs')!,
      liveByBase(winDesktop, 'services.exe'),
      t - 2000,
      false,
    );
    add(t - 1500, factory.processRollup2(r, winDesktop, t - 1500, termsvc));
    add(t, factory.networkListen(r, winDesktop, t, termsvc, 3389, false));
    // Alert: NetBIOS session service on a laptop.
    t = vulnTime();
    add(t, factory.networkListen(r, winLaptop, t, system(winLaptop), 139, false));
    // Alerts: Citrix ICA / session reliability on an unlisted Linux VDA.
    t = vulnTime();
    const hdx = factory.newProcess(
      r,
      linuxVda,
      world.binaries.get('lin:ctxhdx')!,
      liveByBase(linuxVda, 'systemd'),
      t - 3000,
      false,
    );
    add(t - 2500, factory.processRollup2(r, linuxVda, t - 2500, hdx));
    add(t, factory.networkListen(r, linuxVda, t, hdx, 1494, false));
    add(t + 800, factory.networkListen(r, linuxVda, t + 800, hdx, 2598, false));
    // Decoys: the same ports on the known servers (one listed by IP, one by CIDR) …
    const knownPorts: [Host, number, boolean, string][] = [
      [knownByIp, 3389, false, 'known server (exact IP)'],
      [knownByIp, 445, false, 'known server (exact IP)'],
      [knownByIp, 3389, true, 'known server (exact IP)'],
      [knownByCidr, 1494, false, 'known server (CIDR)'],
      [knownByCidr, 2598, false, 'known server (CIDR)'],
      [knownByCidr, 3389, false, 'known server (CIDR)'],
      [knownByCidr, 445, true, 'known server (CIDR)'],
    ];
    for (const [h, port, ip6, why] of knownPorts) {
      t = vulnTime();
      const e = add(t, factory.networkListen(r, h, t, system(h), port, ip6));
      decoy(
        {
          detection: 'vulnerable_services',
          reason: `${why}: aip ${e.aip} is in known_servers`,
          LocalPort: port,
        },
        e,
      );
    }
    // … and other ports on unknown hosts (a near miss included).
    const otherPorts: [Host, number][] = [
      [unknownServer, 5985],
      [unknownServer, 443],
      [winDesktop, 3390],
      [winLaptop, 5040],
      [linuxVda, 22],
      [macLaptop, 7000],
    ];
    for (const [h, port] of otherPorts) {
      t = vulnTime();
      const e = add(t, factory.networkListen(r, h, t, system(h), port, false));
      decoy(
        {
          detection: 'vulnerable_services',
          reason: `port ${port} is not a vulnerable-service port`,
          LocalPort: port,
        },
        e,
      );
    }
  }

  // --- Scenario 2: logons from new networks.
  const owner = (h: Host): User => h.owner!;
  if (logonAttacksFit) {
    // Alert: laptop owner at a hotel (a carrier the user never logged on from).
    let t = travelAttackAt + r.int(3, 20) * 60000 + r.int(0, 59999);
    add(t, factory.userLogon(r, winLaptop, t, owner(winLaptop), 11, liveByBase(winLaptop, 'lsass.exe')));
    t += 3 * HOUR + r.int(0, 3600) * 1000;
    const again = add(
      t,
      factory.userLogon(r, winLaptop, t, owner(winLaptop), 7, liveByBase(winLaptop, 'lsass.exe')),
    );
    decoy(
      {
        detection: 'new_logon_location',
        reason: 'second logon from the same new network (already alerted)',
        user: owner(winLaptop).userName,
      },
      again,
    );
    // Alert: a regular user's account used for RDP on a cloud server (network new to that user),
    // after a few failed attempts.
    const victim = owner(winDesktop);
    t =
      L + 6 * HOUR + r.int(0, Math.max(0, Math.floor((E - L - 32 * HOUR) / 60000))) * 60000 + r.int(0, 59999);
    for (let i = 0; i < 3; i++) {
      const tf = t - (3 - i) * r.int(20, 90) * 1000;
      add(tf, factory.userLogonFailed2(r, unknownServer, tf, victim.userName, aipAt(winDesktop, tf).ip, 10));
    }
    add(t, factory.userLogon(r, unknownServer, t, victim, 10, liveByBase(unknownServer, 'lsass.exe')));
    if (homeAttackHost) {
      t = homeAttackAt + r.int(2, 30) * 60000 + r.int(0, 59999);
      add(
        t,
        factory.userLogon(
          r,
          homeAttackHost,
          t,
          owner(homeAttackHost),
          2,
          liveByBase(homeAttackHost, 'lsass.exe'),
        ),
      );
    }
  } else {
    notes.push(
      'new_logon_location: the data ends too soon after the learning period for planted new-network logons',
    );
  }
  if (learningDecoyFits) {
    // Baseline from a second network inside the learning period, then the same network again later.
    const trip = macLaptop.travel[0];
    let t = trip.fromMs + r.int(2, 30) * 60000 + r.int(0, 59999);
    const first = add(
      t,
      factory.userLogon(r, macLaptop, t, owner(macLaptop), 2, liveByBase(macLaptop, 'launchd')),
    );
    decoy(
      {
        detection: 'new_logon_location',
        reason: 'first logon from a second network inside the learning period (baseline)',
        user: owner(macLaptop).userName,
        network: homeDecoyNet.asOrg,
      },
      first,
    );
    if (decoyReturnAt > 0) {
      t = decoyReturnAt + r.int(2, 30) * 60000 + r.int(0, 59999);
      const later = add(
        t,
        factory.userLogon(r, macLaptop, t, owner(macLaptop), 2, liveByBase(macLaptop, 'launchd')),
      );
      decoy(
        {
          detection: 'new_logon_location',
          reason: 'logon after the learning period from a network learned during it',
          user: owner(macLaptop).userName,
          network: homeDecoyNet.asOrg,
        },
        later,
      );
    }
  }
  // Repeated logons from known networks after the learning period (the background adds more).
  for (const h of [winDesktop, ...otherEndpoints.slice(0, 3)]) {
    if (!h.owner || L + HOUR >= E - HOUR) continue;
    const t = L + HOUR + r.int(0, Math.max(0, Math.floor((E - L - 2 * HOUR) / 1000))) * 1000;
    if (aipAt(h, t) !== h.home) continue;
    const e = add(t, factory.userLogon(r, h, t, h.owner, 7, liveByBase(h, 'lsass.exe')));
    decoy(
      {
        detection: 'new_logon_location',
        reason: 'logon from a network known since the learning period',
        user: h.owner.userName,
      },
      e,
    );
  }

  // --- Scenario 3: IoC matches.
  const iocs = planIocs(r, world, factory, win, add, decoy, notes, {
    v1: winDesktop,
    v2: winLaptop,
    v3: otherEndpoints.find((x) => x.platform === 'Win') ?? otherEndpoints[0] ?? macLaptop,
    v4: macLaptop,
    inbound: unknownServer,
    inbound2: knownByIp,
  });

  planted.sort((a, b) => a.t - b.t);
  return { planted, iocs, decoys, notes };
}

interface IocHosts {
  v1: Host;
  v2: Host;
  v3: Host;
  v4: Host;
  inbound: Host;
  inbound2: Host;
}

function planIocs(
  r: Rng,
  world: World,
  factory: EventFactory,
  win: ScenarioWindow,
  add: (t: number, e: FdrEvent) => FdrEvent,
  decoy: (d: Omit<Decoy, 'event_id' | 'event_time' | 'aid'>, e: FdrEvent) => void,
  notes: string[],
  h: IocHosts,
): IocEntry[] {
  const { startMs: S, endMs: E } = win;
  const span = E - S;
  const iocs: IocEntry[] = [];
  const usedDomains = new Set<string>(world.dns.map((d) => registeredDomain(d.name)));
  const ioc = (
    dataset: string,
    type: string,
    value: string,
    firstMs: number,
    lastMs: number | null,
    description: string,
  ): IocEntry => {
    const e: IocEntry = {
      dataset,
      ioc: value,
      ioc_type: type,
      ioc_id:
        dataset === 'otx' ? r.hex(24) : dataset === 'threatfox' ? String(r.int(1000000, 1999999)) : r.uuid(),
      first_seen: iso(firstMs),
      last_seen: lastMs === null ? '' : iso(lastMs),
      description,
    };
    iocs.push(e);
    return e;
  };
  const hostile = r.shuffle(world.hostile);
  const nextHostile = (): PublicAddress => {
    const a = hostile.shift();
    if (!a) throw new Error('generate: out of hosting-provider addresses for IoCs');
    return a;
  };

  const T =
    S +
    Math.max(6 * HOUR, Math.min(2 * DAY, Math.floor(span * 0.25))) +
    r.int(0, 120) * 60000 +
    r.int(0, 59999);
  const family = `${word(r)}`.toUpperCase();
  const dropper = { md5: r.hex(32), sha256: r.hex(64), name: `Invoice_${r.int(1000, 9999)}.exe` };
  const payload = { md5: r.hex(32), sha256: r.hex(64), name: `${word(r)}svc.exe` };
  const lateHash = r.hex(64);
  const c2Domain = maliciousDomain(r, usedDomains);
  const c2Host = `${r.pick(HOST_LABELS)}.${maliciousDomain(r, usedDomains)}`;
  const c2Ip = nextHostile();
  const scanner = nextHostile();
  const expiredIp = nextHostile();
  const unrelatedIp = nextHostile();

  ioc(
    'malwarebazaar',
    'FileHash-MD5',
    dropper.md5,
    S - 10 * DAY,
    null,
    `Synthetic ${family} dropper (talon generate)`,
  );
  ioc(
    'malwarebazaar',
    'FileHash-SHA256',
    dropper.sha256,
    S - 10 * DAY,
    null,
    `Synthetic ${family} dropper (talon generate)`,
  );
  ioc(
    'malwarebazaar',
    'FileHash-SHA256',
    payload.sha256,
    S - 5 * DAY,
    null,
    `Synthetic ${family} payload, persists via Run key`,
  );
  ioc('otx', 'domain', c2Domain, S - 3 * DAY, E + 30 * DAY, `Synthetic ${family} C2 domain`);
  ioc('threatfox', 'hostname', c2Host, S - DAY, null, `Synthetic ${family} C2 host, "botnet_cc"`);
  ioc('threatfox', 'IPv4', c2Ip.ip, S - 2 * DAY, null, `Synthetic ${family} C2 server (${c2Ip.asOrg})`);
  ioc('otx', 'IPv4', scanner.ip, S - 20 * DAY, null, 'Synthetic RDP scanner');
  ioc(
    'otx',
    'IPv4',
    expiredIp.ip,
    S - 60 * DAY,
    T - 12 * HOUR,
    'Synthetic retired C2 address (last_seen before its use)',
  );
  ioc(
    'malwarebazaar',
    'FileHash-SHA256',
    lateHash,
    T + 12 * HOUR,
    null,
    'Synthetic sample first reported after it was first seen on a host',
  );

  // The infection on v1: dropper from a mail attachment, C2 lookup + connection, payload dropped and
  // persisted, a second C2 host later.
  const v1 = h.v1;
  const outlook = liveByBase(v1, 'OUTLOOK.EXE') ?? liveByBase(v1, 'explorer.exe') ?? v1.live[0];
  const user = v1.owner!;
  const dl = `\\Device\\HarddiskVolume3\\Users\\${user.userName}\\Downloads\\`;
  const dropperBin = {
    base: dropper.name,
    image: `${dl}${dropper.name}`,
    commandLine: `"C:\\Users\\${user.userName}\\Downloads\\${dropper.name}"`,
    kind: 'tool' as const,
    md5: dropper.md5,
    sha256: dropper.sha256,
  };
  const dropperProc = factory.newProcess(r, v1, dropperBin, outlook, T - 400, true);
  add(T, factory.processRollup2(r, v1, T, dropperProc, user));
  const c2Name = `cdn.${c2Domain}`;
  add(T + 4000, factory.dnsRequest(r, v1, T + 4000, dropperProc, c2Name, [c2Ip.ip]));
  const connect1 = add(T + 4600, factory.networkConnectIP4(r, v1, T + 4600, dropperProc, c2Ip.ip, 443));
  decoy(
    {
      detection: 'ioc_match',
      reason: 'same (aid, IPv4, ioc) as the DnsRequest FirstIP4Record 0.6 s earlier: de-duplicated',
      ioc: c2Ip.ip,
      ioc_type: 'IPv4',
    },
    connect1,
  );
  const appData = `\\Device\\HarddiskVolume3\\Users\\${user.userName}\\AppData\\Roaming\\${payload.name.replace('.exe', '')}\\`;
  add(
    T + 9000,
    factory.suspiciousPeFileWritten(
      r,
      v1,
      T + 9000,
      dropperProc,
      `${appData}${payload.name}`,
      payload.sha256,
      payload.md5,
    ),
  );
  const asep = add(
    T + 11000,
    factory.suspiciousRegAsepUpdate(
      r,
      v1,
      T + 11000,
      dropperProc,
      payload.name.replace('.exe', ''),
      `${appData}${payload.name}`,
      payload.sha256,
      user.sid,
    ),
  );
  decoy(
    {
      detection: 'ioc_match',
      reason:
        'payload SHA256 already matched on this aid 2 s earlier (SuspiciousPeFileWritten): de-duplicated',
      ioc: payload.sha256,
      ioc_type: 'FileHash-SHA256',
    },
    asep,
  );
  const payloadBin = {
    base: payload.name,
    image: `${appData}${payload.name}`,
    commandLine: `"C:\\Users\\${user.userName}\\AppData\\Roaming\\${payload.name.replace('.exe', '')}\\${payload.name}" /background`,
    kind: 'tool' as const,
    md5: payload.md5,
    sha256: payload.sha256,
  };
  const payloadProc = factory.newProcess(r, v1, payloadBin, dropperProc, T + 120000 - 300, false);
  const prPayload = add(T + 120000, factory.processRollup2(r, v1, T + 120000, payloadProc, user));
  decoy(
    {
      detection: 'ioc_match',
      reason: 'payload SHA256 in ProcessRollup2 within 24 h of its first match on this aid: de-duplicated',
      ioc: payload.sha256,
      ioc_type: 'FileHash-SHA256',
    },
    prPayload,
  );
  add(T + 121000, factory.endOfProcess(r, v1, T + 121000, dropperProc));
  const c2HostAnswer = unrelatedIp.ip;
  add(T + 4 * HOUR, factory.dnsRequest(r, v1, T + 4 * HOUR, payloadProc, c2Host, [c2HostAnswer]));
  add(
    T + 4 * HOUR + 700,
    factory.networkConnectIP4(r, v1, T + 4 * HOUR + 700, payloadProc, c2HostAnswer, 443),
  );
  const repeat5h = add(T + 5 * HOUR, factory.dnsRequest(r, v1, T + 5 * HOUR, payloadProc, c2Name, [c2Ip.ip]));
  decoy(
    {
      detection: 'ioc_match',
      reason: 'C2 domain and IP again 5 h after the first match on this aid: de-duplicated (24 h)',
      ioc: c2Domain,
      ioc_type: 'domain',
    },
    repeat5h,
  );
  const T34 = T + 34 * HOUR;
  if (T34 + 2000 < E - HOUR) {
    // Alerts again: more than 24 h after the last kept row of these keys.
    add(T34, factory.dnsRequest(r, v1, T34, payloadProc, c2Name, [c2Ip.ip]));
    add(T34 + 900, factory.networkConnectIP4(r, v1, T34 + 900, payloadProc, c2Ip.ip, 443));
  } else {
    notes.push('ioc_match: the data is too short for the repeat after more than 24 h');
  }

  // v2: the dropper seen by the sensor as an already running process (SyntheticProcessRollup2), and
  // a hash seen hours before the feed reported it.
  const v2 = h.v2;
  const early = add(
    T - 2 * HOUR,
    factory.suspiciousPeFileWritten(
      r,
      v2,
      T - 2 * HOUR,
      liveByBase(v2, 'explorer.exe') ?? v2.live[0],
      `\\Device\\HarddiskVolume3\\Users\\${v2.owner?.userName ?? 'Public'}\\Downloads\\setup_${r.int(10, 99)}.exe`,
      lateHash,
      r.hex(32),
    ),
  );
  decoy(
    {
      detection: 'ioc_match',
      reason: "event before the IoC's first_seen (outside [first_seen, last_seen])",
      ioc: lateHash,
      ioc_type: 'FileHash-SHA256',
    },
    early,
  );
  const v2Dropper = factory.newProcess(
    r,
    v2,
    {
      ...dropperBin,
      image: `\\Device\\HarddiskVolume3\\Users\\${v2.owner?.userName ?? 'Public'}\\Downloads\\${dropper.name}`,
    },
    liveByBase(v2, 'explorer.exe'),
    T + HOUR - 60000,
    true,
  );
  add(T + HOUR, factory.syntheticProcessRollup2(r, v2, T + HOUR, v2Dropper, v2.owner));

  // v3: a connection to the C2 address (own alert: the dedup key includes aid), and the late hash
  // after its first_seen.
  const v3 = h.v3;
  const v3Proc =
    liveByBase(v3, 'chrome.exe') ?? liveByBase(v3, 'Google Chrome') ?? v3.live[v3.live.length - 1];
  add(T + 10 * HOUR, factory.networkConnectIP4(r, v3, T + 10 * HOUR, v3Proc, c2Ip.ip, 443));
  if (T + 14 * HOUR < E - HOUR) {
    add(
      T + 14 * HOUR,
      factory.suspiciousPeFileWritten(
        r,
        v3,
        T + 14 * HOUR,
        v3Proc,
        v3.platform === 'Win'
          ? `\\Device\\HarddiskVolume3\\Users\\Public\\setup_${r.int(10, 99)}.exe`
          : `/Users/${v3.owner?.userName ?? 'shared'}/Downloads/setup`,
        lateHash,
        r.hex(32),
      ),
    );
  }

  // v4: a connection to an address whose IoC expired before.
  const v4 = h.v4;
  const v4Proc = v4.live.find((p) => p.binary.kind === 'browser') ?? v4.live[v4.live.length - 1];
  const expired = add(
    T + 2 * HOUR,
    factory.networkConnectIP4(r, v4, T + 2 * HOUR, v4Proc, expiredIp.ip, 8443),
  );
  decoy(
    {
      detection: 'ioc_match',
      reason: "event after the IoC's last_seen (outside [first_seen, last_seen])",
      ioc: expiredIp.ip,
      ioc_type: 'IPv4',
    },
    expired,
  );

  // Inbound: an RDP scanner from the feed reaches two servers; the second hit on the first server
  // 20 min later is de-duplicated.
  const rdp = (hh: Host): LiveProcess => liveByCommand(hh, 'termsvcs') ?? hh.live[0];
  const tIn = T + 3 * HOUR;
  add(tIn, factory.networkReceiveAcceptIP4(r, h.inbound, tIn, rdp(h.inbound), 3389, scanner.ip));
  add(tIn + 5000, factory.userLogonFailed2(r, h.inbound, tIn + 5000, 'administrator', scanner.ip, 3));
  const again = add(
    tIn + 20 * 60000,
    factory.networkReceiveAcceptIP4(r, h.inbound, tIn + 20 * 60000, rdp(h.inbound), 3389, scanner.ip),
  );
  decoy(
    {
      detection: 'ioc_match',
      reason: 'same scanner, same aid, 20 min later: de-duplicated',
      ioc: scanner.ip,
      ioc_type: 'IPv4',
    },
    again,
  );
  add(
    tIn + 5 * 60000,
    factory.networkReceiveAcceptIP4(r, h.inbound2, tIn + 5 * 60000, rdp(h.inbound2), 3389, scanner.ip),
  );

  // Feed entries never seen in the events, of every type, and filler so the list is not tiny.
  const unseen = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const kind = i % 5;
      const first = S - r.int(1, 90) * DAY;
      const last = r.chance(0.3) ? first + r.int(5, 120) * DAY : null;
      if (kind === 0)
        ioc('malwarebazaar', 'FileHash-MD5', r.hex(32), first, last, 'Synthetic unrelated sample');
      else if (kind === 1)
        ioc('malwarebazaar', 'FileHash-SHA256', r.hex(64), first, last, 'Synthetic unrelated sample');
      else if (kind === 2)
        ioc('otx', 'domain', maliciousDomain(r, usedDomains), first, last, 'Synthetic phishing domain');
      else if (kind === 3)
        ioc(
          'threatfox',
          'hostname',
          `${r.pick(HOST_LABELS)}.${maliciousDomain(r, usedDomains)}`,
          first,
          last,
          'Synthetic C2 host',
        );
      else
        ioc(
          'urlhaus',
          'IPv4',
          hostile.length > 0 ? nextHostile().ip : `203.0.113.${r.int(1, 254)}`,
          first,
          last,
          'Synthetic malware distribution host',
        );
    }
  };
  unseen(40);
  return iocs;
}

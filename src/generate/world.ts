/**
 * The simulated estate behind the generated telemetry: one Falcon customer (cid) with offices behind
 * ISP NAT addresses, servers in two clouds, Windows/Mac workstations and laptops, Linux servers,
 * their users, the binaries they run and the internet they talk to. Everything is drawn from the
 * seeded PRNG; public addresses come from the bundled ASN database so enrichment finds them.
 */
import {
  ipInList,
  intToIpv4,
  ipv4ToInt,
  loadAsnRanges,
  pickAddress,
  type AsnRange,
  type PublicAddress,
} from './asn.js';
import type { Rng } from './prng.js';

export type Platform = 'Win' | 'Mac' | 'Lin';
export type HostRole = 'workstation' | 'laptop' | 'server';
export type ProcessKind = 'system' | 'service' | 'browser' | 'office' | 'shell' | 'tool' | 'server-app';

/** A binary: the same file has the same hashes on every host, as in a real fleet. */
export interface Binary {
  base: string;
  image: string;
  commandLine: string;
  kind: ProcessKind;
  md5: string;
  sha256: string;
}

/** A running process on a host; its TargetProcessId is the ContextProcessId of its activity. */
export interface LiveProcess {
  pid: string;
  rawPid: string;
  binary: Binary;
  parent: string;
  parentBase: string;
  startMs: number;
  transient: boolean;
}

export interface Site {
  name: string;
  code: string;
  city: string;
  country: string;
  countryCode: string;
  continent: string;
  timezone: string;
  /** Hours east of UTC (no DST; good enough for a diurnal curve). */
  utcOffset: number;
  kind: 'office' | 'cloud';
  /** Office NAT address (shared by the office's hosts); clouds give each server its own. */
  nat?: PublicAddress;
  cloud?: 'aws' | 'azure';
}

/** A period during which a laptop is somewhere else, so its `aip` is another network's address. */
export interface TravelEpisode {
  fromMs: number;
  toMs: number;
  net: PublicAddress;
  purpose: string;
}

export interface Host {
  aid: string;
  computerName: string;
  platform: Platform;
  role: HostRole;
  site: Site;
  home: PublicAddress;
  localIp: string;
  localIp6: string;
  mac: string;
  agentVersion: string;
  configBuild: string;
  configStateHash: string;
  ou: string;
  osVersion: string;
  productType: string;
  systemManufacturer: string;
  systemProductName: string;
  biosManufacturer: string;
  biosVersion: string;
  chassisType: string;
  serial: string;
  firstSeenMs: number;
  /** Set for servers the detection config treats as known ("exact" IP or "cidr"). */
  knownServer?: 'exact' | 'cidr';
  owner?: User;
  travel: TravelEpisode[];
  live: LiveProcess[];
  bootBinaries: Binary[];
}

export interface User {
  userName: string;
  sid: string;
  principal: string;
  displayName: string;
  isAdmin: boolean;
  primaryHost?: Host;
  /** Hosts this user logs on to in normal operation. */
  logonHosts: Host[];
  passwordLastSetMs: number;
}

export interface DnsName {
  name: string;
  ips: string[];
  kind: 'web' | 'microsoft' | 'google' | 'aws' | 'dev' | 'linux' | 'apple' | 'corp';
}

export interface World {
  cid: string;
  company: string;
  companyDomain: string;
  adDomain: string;
  sites: Site[];
  hosts: Host[];
  users: User[];
  dns: DnsName[];
  /** Addresses of well-known services, by org; remote ends of ordinary connections. */
  benignRemote: PublicAddress[];
  /** Hosting-provider addresses reserved for the IoC scenario (never used by background traffic). */
  hostile: PublicAddress[];
  /** Networks a laptop may travel to: home ISPs and hotel/transit carriers. */
  homeIsps: PublicAddress[];
  hotelNets: PublicAddress[];
  /** aip → the AS org/number the bundled database gives for it (every aip the generator writes). */
  aipOrg: Map<string, PublicAddress>;
  knownServers: string[];
  binaries: Map<string, Binary>;
  domainSid: string;
}

/** Candidate AS numbers per role; the first ones present in the installed database are used. */
export const NETWORK_ROLES = {
  officeIsp: [2856, 701, 3320, 7922, 3215, 1221, 7018],
  homeIsp: [5089, 12322, 3352, 3269, 6805],
  hotel: [2914, 174],
  aws: [16509],
  azure: [8075],
  google: [15169],
  cloudflare: [13335],
  akamai: [20940, 16625],
  fastly: [54113],
  github: [36459],
  hostile: [14061, 24940, 16276, 20473],
} as const;

const FIRST_NAMES = [
  'james',
  'mary',
  'oliver',
  'amelia',
  'noah',
  'priya',
  'liam',
  'sofia',
  'lucas',
  'hannah',
  'mateo',
  'emma',
  'arjun',
  'chloe',
  'ethan',
  'fatima',
  'leon',
  'mia',
  'tom',
  'zoe',
  'daniel',
  'aisha',
  'felix',
  'grace',
  'omar',
  'julia',
  'hugo',
  'nina',
  'samuel',
  'ingrid',
  'kenji',
  'laura',
  'marco',
  'olga',
  'pedro',
  'rachel',
] as const;
const LAST_NAMES = [
  'smith',
  'jones',
  'taylor',
  'brown',
  'wilson',
  'evans',
  'patel',
  'mueller',
  'schmidt',
  'garcia',
  'martin',
  'rossi',
  'nguyen',
  'kim',
  'cohen',
  'walker',
  'hughes',
  'wright',
  'fischer',
  'weber',
  'khan',
  'lopez',
  'clarke',
  'young',
  'hall',
  'becker',
  'morgan',
  'reid',
  'singh',
  'ward',
  'baker',
  'fox',
  'lane',
  'moss',
  'price',
  'stone',
] as const;
const COMPANY_PARTS = [
  'kestrel',
  'northwind',
  'halden',
  'corvid',
  'lumen',
  'brightwater',
  'oakridge',
  'vantor',
];
const COMPANY_SUFFIX = ['analytics', 'logistics', 'partners', 'systems', 'labs', 'group'];

interface SiteTemplate {
  name: string;
  code: string;
  city: string;
  country: string;
  countryCode: string;
  continent: string;
  timezone: string;
  utcOffset: number;
}

const OFFICE_SITES: SiteTemplate[] = [
  {
    name: 'London HQ',
    code: 'LON',
    city: 'London',
    country: 'United Kingdom',
    countryCode: 'GB',
    continent: 'Europe',
    timezone: 'Europe/London',
    utcOffset: 0,
  },
  {
    name: 'New York',
    code: 'NYC',
    city: 'New York',
    country: 'United States',
    countryCode: 'US',
    continent: 'North America',
    timezone: 'America/New_York',
    utcOffset: -5,
  },
  {
    name: 'Berlin',
    code: 'BER',
    city: 'Berlin',
    country: 'Germany',
    countryCode: 'DE',
    continent: 'Europe',
    timezone: 'Europe/Berlin',
    utcOffset: 1,
  },
];

/** Benign names hosts resolve; suffixes span .com, .co.uk, .com.au, .co.jp, … for PSL enrichment. */
const DNS_NAMES: [string, DnsName['kind']][] = [
  ['www.google.com', 'google'],
  ['clients4.google.com', 'google'],
  ['fonts.gstatic.com', 'google'],
  ['update.googleapis.com', 'google'],
  ['www.youtube.com', 'google'],
  ['login.microsoftonline.com', 'microsoft'],
  ['outlook.office365.com', 'microsoft'],
  ['teams.microsoft.com', 'microsoft'],
  ['settings-win.data.microsoft.com', 'microsoft'],
  ['ctldl.windowsupdate.com', 'microsoft'],
  ['time.windows.com', 'microsoft'],
  ['graph.microsoft.com', 'microsoft'],
  ['officeclient.microsoft.com', 'microsoft'],
  ['onedrive.live.com', 'microsoft'],
  ['edge.microsoft.com', 'microsoft'],
  ['s3.amazonaws.com', 'aws'],
  ['sts.amazonaws.com', 'aws'],
  ['www.amazon.co.uk', 'aws'],
  ['www.amazon.co.jp', 'aws'],
  ['github.com', 'dev'],
  ['api.github.com', 'dev'],
  ['objects.githubusercontent.com', 'dev'],
  ['registry.npmjs.org', 'dev'],
  ['pypi.org', 'dev'],
  ['files.pythonhosted.org', 'dev'],
  ['www.bbc.co.uk', 'web'],
  ['www.theguardian.com', 'web'],
  ['www.abc.net.au', 'web'],
  ['www.gov.uk', 'web'],
  ['en.wikipedia.org', 'web'],
  ['www.spiegel.de', 'web'],
  ['www.lemonde.fr', 'web'],
  ['www.nytimes.com', 'web'],
  ['slack.com', 'web'],
  ['zoom.us', 'web'],
  ['www.linkedin.com', 'web'],
  ['cdn.jsdelivr.net', 'web'],
  ['ocsp.digicert.com', 'web'],
  ['www.smh.com.au', 'web'],
  ['www.nhk.or.jp', 'web'],
  ['www.booking.com', 'web'],
  ['archive.ubuntu.com', 'linux'],
  ['security.ubuntu.com', 'linux'],
  ['packages.microsoft.com', 'linux'],
  ['download.docker.com', 'linux'],
  ['api.snapcraft.io', 'linux'],
  ['swscan.apple.com', 'apple'],
  ['gateway.icloud.com', 'apple'],
  ['mesu.apple.com', 'apple'],
];

function hashBinary(rng: Rng, base: string, image: string, commandLine: string, kind: ProcessKind): Binary {
  const r = rng.fork(`binary:${image}`);
  return { base, image, commandLine, kind, md5: r.hex(32), sha256: r.hex(64) };
}

const WIN_SYS32 = '\\Device\\HarddiskVolume3\\Windows\\System32\\';
const WIN_PF = '\\Device\\HarddiskVolume3\\Program Files\\';
const WIN_PF86 = '\\Device\\HarddiskVolume3\\Program Files (x86)\\';

type BinarySpec = [key: string, base: string, image: string, cmd: string, kind: ProcessKind];

const BINARY_SPECS: BinarySpec[] = [
  ['win:system', 'ntoskrnl.exe', `${WIN_SYS32}ntoskrnl.exe`, 'System', 'system'],
  [
    'win:services',
    'services.exe',
    `${WIN_SYS32}services.exe`,
    'C:\\Windows\\system32\\services.exe',
    'system',
  ],
  ['win:lsass', 'lsass.exe', `${WIN_SYS32}lsass.exe`, 'C:\\Windows\\system32\\lsass.exe', 'system'],
  [
    'win:svchost-netsvcs',
    'svchost.exe',
    `${WIN_SYS32}svchost.exe`,
    'C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule',
    'service',
  ],
  [
    'win:svchost-rpcss',
    'svchost.exe',
    `${WIN_SYS32}svchost.exe`,
    'C:\\Windows\\system32\\svchost.exe -k RPCSS -p',
    'service',
  ],
  [
    'win:svchost-termsvcs',
    'svchost.exe',
    `${WIN_SYS32}svchost.exe`,
    'C:\\Windows\\System32\\svchost.exe -k termsvcs -s TermService',
    'service',
  ],
  [
    'win:svchost-dosvc',
    'svchost.exe',
    `${WIN_SYS32}svchost.exe`,
    'C:\\Windows\\System32\\svchost.exe -k NetworkService -p -s DoSvc',
    'service',
  ],
  [
    'win:falcon',
    'CSFalconService.exe',
    `${WIN_PF}CrowdStrike\\CSFalconService.exe`,
    '"C:\\Program Files\\CrowdStrike\\CSFalconService.exe"',
    'service',
  ],
  [
    'win:explorer',
    'explorer.exe',
    '\\Device\\HarddiskVolume3\\Windows\\explorer.exe',
    'C:\\Windows\\Explorer.EXE',
    'shell',
  ],
  [
    'win:chrome',
    'chrome.exe',
    `${WIN_PF}Google\\Chrome\\Application\\chrome.exe`,
    '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"',
    'browser',
  ],
  [
    'win:msedge',
    'msedge.exe',
    `${WIN_PF86}Microsoft\\Edge\\Application\\msedge.exe`,
    '"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe" --profile-directory=Default',
    'browser',
  ],
  [
    'win:teams',
    'ms-teams.exe',
    `${WIN_PF}WindowsApps\\MSTeams_24193.1805.3040.8975_x64__8wekyb3d8bbwe\\ms-teams.exe`,
    '"ms-teams.exe" msteams:system-initiated',
    'office',
  ],
  [
    'win:outlook',
    'OUTLOOK.EXE',
    `${WIN_PF}Microsoft Office\\root\\Office16\\OUTLOOK.EXE`,
    '"C:\\Program Files\\Microsoft Office\\Root\\Office16\\OUTLOOK.EXE"',
    'office',
  ],
  [
    'win:onedrive',
    'OneDrive.exe',
    `${WIN_PF}Microsoft OneDrive\\OneDrive.exe`,
    '"C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe" /background',
    'office',
  ],
  [
    'win:winword',
    'WINWORD.EXE',
    `${WIN_PF}Microsoft Office\\root\\Office16\\WINWORD.EXE`,
    '"C:\\Program Files\\Microsoft Office\\Root\\Office16\\WINWORD.EXE" /n',
    'office',
  ],
  [
    'win:excel',
    'EXCEL.EXE',
    `${WIN_PF}Microsoft Office\\root\\Office16\\EXCEL.EXE`,
    '"C:\\Program Files\\Microsoft Office\\Root\\Office16\\EXCEL.EXE"',
    'office',
  ],
  ['win:cmd', 'cmd.exe', `${WIN_SYS32}cmd.exe`, '"C:\\Windows\\system32\\cmd.exe" /c ipconfig /all', 'tool'],
  [
    'win:powershell',
    'powershell.exe',
    `${WIN_SYS32}WindowsPowerShell\\v1.0\\powershell.exe`,
    '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" -NoProfile -Command Get-Service',
    'tool',
  ],
  ['win:notepad', 'notepad.exe', `${WIN_SYS32}notepad.exe`, '"C:\\Windows\\system32\\notepad.exe"', 'tool'],
  ['win:git', 'git.exe', `${WIN_PF}Git\\cmd\\git.exe`, 'git.exe fetch --all --prune', 'tool'],
  [
    'win:conhost',
    'conhost.exe',
    `${WIN_SYS32}conhost.exe`,
    '\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1',
    'tool',
  ],
  ['win:msiexec', 'msiexec.exe', `${WIN_SYS32}msiexec.exe`, 'C:\\Windows\\system32\\msiexec.exe /V', 'tool'],
  ['win:tasklist', 'tasklist.exe', `${WIN_SYS32}tasklist.exe`, 'tasklist /v', 'tool'],
  [
    'win:w3wp',
    'w3wp.exe',
    `${WIN_SYS32}inetsrv\\w3wp.exe`,
    'c:\\windows\\system32\\inetsrv\\w3wp.exe -ap "DefaultAppPool"',
    'server-app',
  ],
  [
    'win:sqlservr',
    'sqlservr.exe',
    `${WIN_PF}Microsoft SQL Server\\MSSQL16.MSSQLSERVER\\MSSQL\\Binn\\sqlservr.exe`,
    '"C:\\Program Files\\Microsoft SQL Server\\MSSQL16.MSSQLSERVER\\MSSQL\\Binn\\sqlservr.exe" -sMSSQLSERVER',
    'server-app',
  ],
  [
    'win:citrix',
    'PicaSvc2.exe',
    `${WIN_PF}Citrix\\ICAService\\picaSvc2.exe`,
    '"C:\\Program Files\\Citrix\\ICAService\\picaSvc2.exe"',
    'server-app',
  ],
  ['mac:launchd', 'launchd', '/sbin/launchd', '/sbin/launchd', 'system'],
  ['mac:mdns', 'mDNSResponder', '/usr/sbin/mDNSResponder', '/usr/sbin/mDNSResponder', 'service'],
  [
    'mac:falcon',
    'com.crowdstrike.falcon.Agent',
    '/Library/SystemExtensions/com.crowdstrike.falcon.Agent.systemextension/Contents/MacOS/com.crowdstrike.falcon.Agent',
    '/Library/SystemExtensions/com.crowdstrike.falcon.Agent.systemextension/Contents/MacOS/com.crowdstrike.falcon.Agent',
    'service',
  ],
  [
    'mac:finder',
    'Finder',
    '/System/Library/CoreServices/Finder.app/Contents/MacOS/Finder',
    '/System/Library/CoreServices/Finder.app/Contents/MacOS/Finder',
    'shell',
  ],
  [
    'mac:chrome',
    'Google Chrome',
    '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
    '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
    'browser',
  ],
  [
    'mac:slack',
    'Slack',
    '/Applications/Slack.app/Contents/MacOS/Slack',
    '/Applications/Slack.app/Contents/MacOS/Slack',
    'office',
  ],
  [
    'mac:controlcenter',
    'ControlCenter',
    '/System/Library/CoreServices/ControlCenter.app/Contents/MacOS/ControlCenter',
    '/System/Library/CoreServices/ControlCenter.app/Contents/MacOS/ControlCenter',
    'service',
  ],
  ['mac:zsh', 'zsh', '/bin/zsh', '-zsh', 'tool'],
  ['mac:curl', 'curl', '/usr/bin/curl', 'curl -fsSL https://api.github.com/repos', 'tool'],
  ['mac:git', 'git', '/usr/bin/git', 'git pull --rebase', 'tool'],
  [
    'mac:softwareupdated',
    'softwareupdated',
    '/System/Library/PrivateFrameworks/MobileSoftwareUpdate.framework/Support/softwareupdated',
    '/System/Library/PrivateFrameworks/MobileSoftwareUpdate.framework/Support/softwareupdated',
    'service',
  ],
  ['lin:systemd', 'systemd', '/usr/lib/systemd/systemd', '/sbin/init splash', 'system'],
  [
    'lin:sshd',
    'sshd',
    '/usr/sbin/sshd',
    'sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups',
    'service',
  ],
  [
    'lin:resolved',
    'systemd-resolved',
    '/usr/lib/systemd/systemd-resolved',
    '/lib/systemd/systemd-resolved',
    'service',
  ],
  [
    'lin:nginx',
    'nginx',
    '/usr/sbin/nginx',
    'nginx: master process /usr/sbin/nginx -g daemon on; master_process on;',
    'server-app',
  ],
  [
    'lin:dockerd',
    'dockerd',
    '/usr/bin/dockerd',
    '/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock',
    'server-app',
  ],
  [
    'lin:falcon',
    'falcon-sensor',
    '/opt/CrowdStrike/falcon-sensor',
    '/opt/CrowdStrike/falcon-sensor',
    'service',
  ],
  ['lin:ctxhdx', 'ctxhdx', '/opt/Citrix/VDA/bin/ctxhdx', '/opt/Citrix/VDA/bin/ctxhdx', 'server-app'],
  ['lin:bash', 'bash', '/usr/bin/bash', '-bash', 'tool'],
  [
    'lin:curl',
    'curl',
    '/usr/bin/curl',
    'curl -sS https://archive.ubuntu.com/ubuntu/dists/jammy/InRelease',
    'tool',
  ],
  ['lin:apt', 'apt-get', '/usr/bin/apt-get', 'apt-get update -q', 'tool'],
  [
    'lin:python3',
    'python3.10',
    '/usr/bin/python3.10',
    '/usr/bin/python3 /opt/app/worker.py --queue default',
    'tool',
  ],
];

/** Binaries each kind of host runs from boot (reported as SyntheticProcessRollup2 at sensor start). */
const BOOT_SETS: Record<string, string[]> = {
  'Win:workstation': [
    'win:system',
    'win:services',
    'win:lsass',
    'win:svchost-netsvcs',
    'win:svchost-rpcss',
    'win:svchost-dosvc',
    'win:falcon',
    'win:explorer',
    'win:chrome',
    'win:teams',
    'win:outlook',
    'win:onedrive',
  ],
  'Win:laptop': [
    'win:system',
    'win:services',
    'win:lsass',
    'win:svchost-netsvcs',
    'win:svchost-rpcss',
    'win:svchost-dosvc',
    'win:falcon',
    'win:explorer',
    'win:msedge',
    'win:teams',
    'win:outlook',
    'win:onedrive',
  ],
  'Win:server': [
    'win:system',
    'win:services',
    'win:lsass',
    'win:svchost-netsvcs',
    'win:svchost-rpcss',
    'win:svchost-termsvcs',
    'win:falcon',
    'win:w3wp',
    'win:sqlservr',
  ],
  'Mac:laptop': [
    'mac:launchd',
    'mac:mdns',
    'mac:falcon',
    'mac:finder',
    'mac:chrome',
    'mac:slack',
    'mac:controlcenter',
    'mac:softwareupdated',
  ],
  'Lin:server': ['lin:systemd', 'lin:sshd', 'lin:resolved', 'lin:nginx', 'lin:dockerd', 'lin:falcon'],
};

/** Short-lived programs started during the day (ProcessRollup2 … EndOfProcess). */
export const TRANSIENT_SETS: Record<Platform, string[]> = {
  Win: [
    'win:cmd',
    'win:powershell',
    'win:notepad',
    'win:git',
    'win:conhost',
    'win:msiexec',
    'win:tasklist',
    'win:winword',
    'win:excel',
  ],
  Mac: ['mac:zsh', 'mac:curl', 'mac:git'],
  Lin: ['lin:bash', 'lin:curl', 'lin:apt', 'lin:python3'],
};

export function osVersionFor(platform: Platform, role: HostRole): string {
  if (platform === 'Win') return role === 'server' ? 'Windows Server 2022' : 'Windows 11';
  if (platform === 'Mac') return 'Sonoma (14)';
  return 'Ubuntu 22.04';
}

export function configBuildFor(platform: Platform): string {
  // Falcon's ConfigBuild: 1007.<platform id>.<build>.<n>; 3 = Windows, 4 = macOS, 8 = Linux.
  return platform === 'Win'
    ? '1007.3.0018410.1'
    : platform === 'Mac'
      ? '1007.4.0018410.1'
      : '1007.8.0018410.1';
}

export function agentVersionFor(platform: Platform): string {
  return platform === 'Win' ? '7.18.18410.0' : platform === 'Mac' ? '7.18.18404.0' : '7.18.18403.0';
}

/** Fewest hosts the planted scenarios need (4 servers, 4 workstations). */
export const MIN_HOSTS = 8;

export interface WorldOptions {
  hosts: number;
  startMs: number;
  asnCsvPath: string;
}

function takeOrg(
  rng: Rng,
  byAsn: Map<number, AsnRange[]>,
  candidates: readonly number[],
  used: Set<string>,
  label: string,
): AsnRange[] {
  for (const asn of candidates) {
    const ranges = byAsn.get(asn);
    if (ranges && ranges.length > 0 && !used.has(ranges[0].asOrg)) {
      used.add(ranges[0].asOrg);
      return ranges.filter((r) => r.asOrg === ranges[0].asOrg);
    }
  }
  void rng;
  throw new Error(
    `generate: the ASN database has none of the networks for ${label} (AS ${candidates.join(', ')})`,
  );
}

export async function buildWorld(rng: Rng, opts: WorldOptions): Promise<World> {
  const wanted = new Set<number>(Object.values(NETWORK_ROLES).flat());
  const byAsn = await loadAsnRanges(opts.asnCsvPath, wanted);
  const r = rng.fork('world');
  const usedOrgs = new Set<string>();
  const avoid = new Set<string>();
  const aipOrg = new Map<string, PublicAddress>();
  const pick = (ranges: AsnRange[]): PublicAddress => {
    const a = pickAddress(r, ranges, avoid);
    avoid.add(a.ip);
    return a;
  };

  const company = `${r.pick(COMPANY_PARTS)}-${r.pick(COMPANY_SUFFIX)}`;
  const companyDomain = `${company}.co.uk`;
  const adDomain = company.split('-')[0].toUpperCase();
  const domainSid = `S-1-5-21-${r.int(1000000000, 4000000000)}-${r.int(1000000000, 4000000000)}-${r.int(1000000000, 4000000000)}`;

  // Networks: each office behind a different ISP, two clouds, and the rest of the internet.
  const sites: Site[] = [];
  const officeIsps = [...NETWORK_ROLES.officeIsp];
  for (const t of OFFICE_SITES) {
    const ranges = takeOrg(r, byAsn, officeIsps, usedOrgs, `office ${t.name}`);
    const nat = pick(ranges);
    aipOrg.set(nat.ip, nat);
    sites.push({ ...t, kind: 'office', nat });
  }
  const awsRanges = takeOrg(r, byAsn, NETWORK_ROLES.aws, usedOrgs, 'AWS');
  const azureRanges = takeOrg(r, byAsn, NETWORK_ROLES.azure, usedOrgs, 'Azure');
  const aws: Site = {
    name: 'aws-us-east-1',
    code: 'AWS',
    city: 'Ashburn',
    country: 'United States',
    countryCode: 'US',
    continent: 'North America',
    timezone: 'America/New_York',
    utcOffset: -5,
    kind: 'cloud',
    cloud: 'aws',
  };
  const azure: Site = {
    name: 'azure-westeurope',
    code: 'AZW',
    city: 'Amsterdam',
    country: 'Netherlands',
    countryCode: 'NL',
    continent: 'Europe',
    timezone: 'Europe/Amsterdam',
    utcOffset: 1,
    kind: 'cloud',
    cloud: 'azure',
  };
  sites.push(aws, azure);

  const homeIsps: PublicAddress[] = [];
  for (const asn of NETWORK_ROLES.homeIsp) {
    const ranges = byAsn.get(asn);
    if (!ranges || usedOrgs.has(ranges[0].asOrg)) continue;
    usedOrgs.add(ranges[0].asOrg);
    homeIsps.push(pick(ranges.filter((x) => x.asOrg === ranges[0].asOrg)));
  }
  const hotelNets: PublicAddress[] = [];
  for (const asn of NETWORK_ROLES.hotel) {
    const ranges = byAsn.get(asn);
    if (!ranges || usedOrgs.has(ranges[0].asOrg)) continue;
    usedOrgs.add(ranges[0].asOrg);
    hotelNets.push(pick(ranges.filter((x) => x.asOrg === ranges[0].asOrg)));
  }
  if (homeIsps.length < 2 || hotelNets.length < 1) {
    throw new Error(
      'generate: the ASN database lacks the home-ISP / hotel networks the logon scenario needs',
    );
  }
  for (const a of [...homeIsps, ...hotelNets]) aipOrg.set(a.ip, a);

  const benignRemote: PublicAddress[] = [];
  const remoteByKind = new Map<string, PublicAddress[]>();
  const remoteRoles: [string, readonly number[]][] = [
    ['google', NETWORK_ROLES.google],
    ['microsoft', NETWORK_ROLES.azure],
    ['aws', NETWORK_ROLES.aws],
    ['cloudflare', NETWORK_ROLES.cloudflare],
    ['akamai', NETWORK_ROLES.akamai],
    ['fastly', NETWORK_ROLES.fastly],
    ['github', NETWORK_ROLES.github],
  ];
  for (const [kind, asns] of remoteRoles) {
    const list: PublicAddress[] = [];
    for (const asn of asns) {
      const ranges = byAsn.get(asn);
      if (!ranges) continue;
      for (let i = 0; i < 6; i++) list.push(pick(ranges));
      break;
    }
    remoteByKind.set(kind, list);
    benignRemote.push(...list);
  }
  const hostile: PublicAddress[] = [];
  for (const asn of NETWORK_ROLES.hostile) {
    const ranges = byAsn.get(asn);
    if (!ranges) continue;
    for (let i = 0; i < 4; i++) hostile.push(pick(ranges));
  }
  if (hostile.length < 8)
    throw new Error('generate: the ASN database lacks the hosting networks used for IoC addresses');

  const dns: DnsName[] = DNS_NAMES.map(([name, kind]) => {
    const pool =
      kind === 'google'
        ? remoteByKind.get('google')
        : kind === 'microsoft'
          ? remoteByKind.get('microsoft')
          : kind === 'aws'
            ? remoteByKind.get('aws')
            : kind === 'dev'
              ? remoteByKind.get('github')?.length
                ? remoteByKind.get('github')
                : remoteByKind.get('fastly')
              : kind === 'apple'
                ? remoteByKind.get('akamai')
                : r.pick([
                    remoteByKind.get('cloudflare'),
                    remoteByKind.get('akamai'),
                    remoteByKind.get('fastly'),
                  ]);
    const usable = pool && pool.length > 0 ? pool : benignRemote;
    const ips = r
      .shuffle(usable)
      .slice(0, r.int(1, 3))
      .map((a) => a.ip);
    return { name, kind, ips };
  });
  dns.push({ name: `intranet.${companyDomain}`, kind: 'corp', ips: [sites[0].nat!.ip] });
  dns.push({ name: `vpn.${companyDomain}`, kind: 'corp', ips: [sites[0].nat!.ip] });

  const binaries = new Map<string, Binary>();
  for (const [key, base, image, cmd, kind] of BINARY_SPECS)
    binaries.set(key, hashBinary(rng, base, image, cmd, kind));

  // Hosts: three Windows servers the vulnerable-services scenario relies on (known by IP, known by
  // CIDR, unknown), Linux servers, then workstations and laptops spread over the offices.
  const hostCount = Math.max(MIN_HOSTS, opts.hosts);
  const hosts: Host[] = [];
  const usedNames = new Set<string>();
  const mkHost = (
    platform: Platform,
    role: HostRole,
    site: Site,
    name: string,
    home: PublicAddress,
  ): Host => {
    const officeIdx = sites.indexOf(site);
    const localIp =
      site.kind === 'cloud'
        ? `172.31.${r.int(0, 63)}.${r.int(4, 250)}`
        : `10.${10 + officeIdx}.${r.int(1, 30)}.${r.int(10, 250)}`;
    const bootKey = `${platform}:${role}`;
    const bootBinaries = (
      BOOT_SETS[bootKey] ??
      BOOT_SETS[`${platform}:server`] ??
      BOOT_SETS['Win:workstation']
    ).map((k) => binaries.get(k)!);
    const mac = Array.from({ length: 6 }, (_, i) => (i === 0 ? (r.int(0, 63) * 4).toString(16) : r.hex(2)))
      .map((x) => x.padStart(2, '0').toUpperCase())
      .join('-');
    const hw =
      platform === 'Mac'
        ? {
            m: 'Apple Inc.',
            p: r.pick(['MacBookPro18,3', 'Mac14,2', 'Mac15,6']),
            bm: 'Apple Inc.',
            bv: '10151.101.3',
            ch: 'Laptop',
          }
        : site.kind === 'cloud'
          ? site.cloud === 'aws'
            ? {
                m: 'Amazon EC2',
                p: r.pick(['m5.xlarge', 't3.large', 'c6i.2xlarge']),
                bm: 'Amazon EC2',
                bv: '1.0',
                ch: 'Other',
              }
            : {
                m: 'Microsoft Corporation',
                p: 'Virtual Machine',
                bm: 'Microsoft Corporation',
                bv: 'Hyper-V UEFI Release v4.1',
                ch: 'Other',
              }
          : role === 'laptop'
            ? {
                m: r.pick(['LENOVO', 'Dell Inc.', 'HP']),
                p: r.pick(['20XW0055UK', 'Latitude 7440', 'HP EliteBook 840 G10']),
                bm: 'LENOVO',
                bv: 'N32ET91W (1.67 )',
                ch: 'Laptop',
              }
            : { m: 'Dell Inc.', p: 'OptiPlex 7010', bm: 'Dell Inc.', bv: '1.14.0', ch: 'Desktop' };
    let cn = name;
    while (usedNames.has(cn)) cn = `${name}${r.int(0, 9)}`;
    usedNames.add(cn);
    const host: Host = {
      aid: r.hex(32),
      computerName: cn,
      platform,
      role,
      site,
      home,
      localIp,
      localIp6: `fe80::${r.hex(4)}:${r.hex(4)}:${r.hex(4)}:${r.hex(4)}`.replace(/:0+([0-9a-f])/g, ':$1'),
      mac,
      agentVersion: agentVersionFor(platform),
      configBuild: configBuildFor(platform),
      configStateHash: String(r.int(100000000, 4294967295)),
      ou: site.kind === 'cloud' ? 'Servers' : role === 'laptop' ? 'Laptops' : 'Workstations',
      osVersion: osVersionFor(platform, role),
      productType: role === 'server' ? '3' : '1',
      systemManufacturer: hw.m,
      systemProductName: hw.p,
      biosManufacturer: hw.bm,
      biosVersion: hw.bv,
      chassisType: hw.ch,
      serial: r.hex(12).toUpperCase(),
      firstSeenMs: opts.startMs - r.int(20, 400) * 86400000,
      travel: [],
      live: [],
      bootBinaries,
    };
    hosts.push(host);
    return host;
  };

  const knownByIp = mkHost('Win', 'server', aws, 'SRV-RDS01', pick(awsRanges));
  knownByIp.knownServer = 'exact';
  const knownByCidr = mkHost('Win', 'server', azure, 'SRV-CTX01', pick(azureRanges));
  knownByCidr.knownServer = 'cidr';
  knownByCidr.bootBinaries.push(binaries.get('win:citrix')!, binaries.get('win:svchost-termsvcs')!);
  // The known-servers CIDR: the /28 around the Citrix server. No other generated address may fall
  // inside it, or the unknown hosts would silently become "known".
  const cidrBase = Math.floor(ipv4ToInt(knownByCidr.home.ip) / 16) * 16;
  const knownCidr = `${intToIpv4(cidrBase)}/28`;
  for (let i = 0; i < 16; i++) avoid.add(intToIpv4(cidrBase + i));
  mkHost('Win', 'server', aws, 'SRV-APP07', pick(awsRanges));
  const linCount = Math.max(1, Math.round(hostCount * 0.08));
  for (let i = 0; i < linCount; i++) {
    const site = i % 2 === 0 ? aws : azure;
    mkHost(
      'Lin',
      'server',
      site,
      i === 0 ? 'vda-lnx01' : `web-${String(i).padStart(2, '0')}`,
      pick(site === aws ? awsRanges : azureRanges),
    );
  }
  const offices = sites.filter((s) => s.kind === 'office');
  const workstationCount = hostCount - hosts.length;
  for (let i = 0; i < workstationCount; i++) {
    const site = offices[i % offices.length];
    // The first three are fixed (a Windows desktop, a Windows laptop, a Mac laptop) because the
    // scenarios need each kind; the rest are a random mix.
    const roll = i === 0 ? 0.9 : i === 1 ? 0.4 : i === 2 ? 0.1 : r.next();
    const platform: Platform = roll < 0.25 ? 'Mac' : 'Win';
    const role: HostRole = platform === 'Mac' || roll < 0.6 ? 'laptop' : 'workstation';
    const tag = platform === 'Mac' ? 'MBP' : role === 'laptop' ? 'LT' : 'WS';
    mkHost(
      platform,
      role,
      site,
      `${site.code}-${tag}-${String(r.int(100, 9999)).padStart(4, '0')}`,
      site.nat!,
    );
  }
  for (const h of hosts) aipOrg.set(h.home.ip, h.home);
  const knownServers = [knownByIp.home.ip, knownCidr];
  for (const h of hosts) {
    if (!h.knownServer && ipInList(h.home.ip, knownServers)) {
      throw new Error(`generate: host ${h.computerName} ${h.home.ip} collides with the known-servers list`);
    }
  }

  // Users: one owner per workstation/laptop, plus two administrators who work on the servers.
  const users: User[] = [];
  const usedUsers = new Set<string>();
  let rid = 1100 + r.int(0, 800);
  const mkUser = (isAdmin: boolean): User => {
    let first: string = r.pick(FIRST_NAMES);
    let last: string = r.pick(LAST_NAMES);
    let name = `${first[0]}${last}`;
    while (usedUsers.has(name)) {
      first = r.pick(FIRST_NAMES);
      last = r.pick(LAST_NAMES);
      name = `${first[0]}${last}${r.int(1, 99)}`;
    }
    usedUsers.add(name);
    const userName = isAdmin ? `adm-${name}` : name;
    rid += r.int(1, 40);
    const u: User = {
      userName,
      sid: `${domainSid}-${rid}`,
      principal: `${userName}@${companyDomain}`,
      displayName: `${first[0].toUpperCase()}${first.slice(1)} ${last[0].toUpperCase()}${last.slice(1)}`,
      isAdmin,
      logonHosts: [],
      passwordLastSetMs: opts.startMs - r.int(3, 85) * 86400000 - r.int(0, 86399) * 1000,
    };
    users.push(u);
    return u;
  };
  for (const h of hosts) {
    if (h.role === 'server') continue;
    const u = mkUser(false);
    u.primaryHost = h;
    u.logonHosts.push(h);
    h.owner = u;
  }
  const servers = hosts.filter((h) => h.role === 'server');
  for (let i = 0; i < 2; i++) {
    const a = mkUser(true);
    a.logonHosts.push(...servers);
    a.primaryHost = servers[i % servers.length];
  }

  return {
    cid: r.hex(32),
    company,
    companyDomain,
    adDomain,
    sites,
    hosts,
    users,
    dns,
    benignRemote,
    hostile,
    homeIsps,
    hotelNets,
    aipOrg,
    knownServers,
    binaries,
    domainSid,
  };
}

/** The host's external address at a moment: its home network unless a travel episode covers it. */
export function aipAt(host: Host, tMs: number): PublicAddress {
  for (const t of host.travel) if (tMs >= t.fromMs && tMs < t.toMs) return t.net;
  return host.home;
}

/**
 * Builders for single FDR events, shaped like Falcon Data Replicator output: every value a string,
 * `timestamp` the cloud receive time in epoch milliseconds, `ContextTimeStamp` and the other `*Time`
 * fields the sensor time in "seconds.millis", `name` = <event_simpleName>[Mac|Lin]V<n>, the common
 * envelope (aid, aip, cid, id, ConfigBuild, ConfigStateHash, Entitlements,
 * EffectiveTransmissionClass, …) on every event.
 */
import type { Rng } from './prng.js';
import { aipAt, type Binary, type Host, type LiveProcess, type User, type World } from './world.js';

export type FdrEvent = Record<string, string>;

/** Event version suffixes per platform (Falcon bumps them as fields are added). */
const VERSIONS: Record<string, [win: number, mac: number, lin: number]> = {
  ProcessRollup2: [19, 5, 5],
  SyntheticProcessRollup2: [2, 3, 2],
  EndOfProcess: [18, 5, 4],
  DnsRequest: [4, 1, 1],
  NetworkConnectIP4: [12, 5, 5],
  NetworkConnectIP6: [12, 5, 5],
  NetworkListenIP4: [12, 5, 5],
  NetworkListenIP6: [12, 5, 5],
  NetworkReceiveAcceptIP4: [10, 5, 5],
  UserLogon: [10, 1, 1],
  UserLogonFailed2: [3, 1, 1],
  SuspiciousPeFileWritten: [4, 1, 1],
  SuspiciousRegAsepUpdate: [5, 1, 1],
  AgentOnline: [13, 13, 11],
  SensorHeartbeat: [8, 5, 5],
};

/** How long after the sensor saw something the cloud stamps `timestamp` (ms). */
function latency(rng: Rng): number {
  return rng.int(120, 2400);
}

export function secondsString(ms: number): string {
  return (Math.round(ms) / 1000).toFixed(3);
}

export class EventFactory {
  constructor(private readonly world: World) {}

  /** The envelope every FDR event carries; `tMs` is the event's `timestamp`. */
  envelope(rng: Rng, host: Host, type: string, tMs: number): FdrEvent {
    const v = VERSIONS[type] ?? [1, 1, 1];
    const version = host.platform === 'Win' ? v[0] : host.platform === 'Mac' ? v[1] : v[2];
    const platformTag = host.platform === 'Win' ? '' : host.platform;
    const e: FdrEvent = {
      aid: host.aid,
      aip: aipAt(host, tMs).ip,
      cid: this.world.cid,
      event_platform: host.platform,
      event_simpleName: type,
      id: rng.uuid(),
      name: `${type}${platformTag}V${version}`,
      timestamp: String(tMs),
      ConfigBuild: host.configBuild,
      ConfigStateHash: host.configStateHash,
      Entitlements: '15',
      EffectiveTransmissionClass:
        type === 'SensorHeartbeat' || type === 'AgentOnline' ? '0' : type.startsWith('User') ? '2' : '3',
    };
    if (host.platform === 'Win') e.EventOrigin = '1';
    return e;
  }

  /** The sensor-side time of an event stamped `tMs` by the cloud. */
  contextTime(rng: Rng, tMs: number): string {
    return secondsString(tMs - latency(rng));
  }

  threadId(rng: Rng, host: Host): string {
    return host.platform === 'Win' ? rng.digits(rng.int(11, 12)) : '0';
  }

  newProcess(
    rng: Rng,
    host: Host,
    binary: Binary,
    parent: LiveProcess | undefined,
    startMs: number,
    transient: boolean,
  ): LiveProcess {
    return {
      pid: host.platform === 'Win' ? rng.digits(rng.int(10, 13)) : rng.digits(18),
      rawPid: String(host.platform === 'Win' ? rng.int(1, 3000) * 4 : rng.int(300, 99999)),
      binary,
      parent: parent?.pid ?? (host.platform === 'Win' ? rng.digits(10) : rng.digits(18)),
      parentBase: parent?.binary.base ?? (host.platform === 'Win' ? 'services.exe' : 'launchd'),
      startMs,
      transient,
    };
  }

  private processFields(rng: Rng, host: Host, p: LiveProcess, user: User | undefined): FdrEvent {
    const b = p.binary;
    const userSid =
      user?.sid ??
      (b.kind === 'system' || b.kind === 'service' || b.kind === 'server-app'
        ? 'S-1-5-18'
        : (host.owner?.sid ?? 'S-1-5-18'));
    if (host.platform === 'Win') {
      return {
        AuthenticationId: userSid === 'S-1-5-18' ? '999' : String(rng.int(100000, 9999999)),
        CommandLine: b.commandLine,
        ImageFileName: b.image,
        ImageSubsystem: b.kind === 'tool' && b.base !== 'notepad.exe' ? '3' : '2',
        IntegrityLevel: userSid === 'S-1-5-18' ? '16384' : '8192',
        MD5HashData: b.md5,
        ParentBaseFileName: p.parentBase,
        ParentProcessId: p.parent,
        ProcessCreateFlags: String(rng.pick([1024, 525332, 16778244])),
        ProcessEndTime: '',
        ProcessParameterFlags: '24577',
        ProcessStartTime: secondsString(p.startMs),
        ProcessSxsFlags: '64',
        RawProcessId: p.rawPid,
        SHA1HashData: '0000000000000000000000000000000000000000',
        SHA256HashData: b.sha256,
        SessionId: userSid === 'S-1-5-18' ? '0' : '1',
        SignInfoFlags: String(rng.pick([8683538, 8650760, 9175042])),
        SourceProcessId: p.parent,
        SourceThreadId: this.threadId(rng, host),
        TargetProcessId: p.pid,
        TokenType: '1',
        TreeId: rng.digits(10),
        UserSid: userSid,
      };
    }
    const uid = userSid === 'S-1-5-18' ? '0' : '501';
    return {
      CommandLine: b.commandLine,
      GID: uid === '0' ? '0' : '20',
      ImageFileName: b.image,
      MD5HashData: b.md5,
      ParentProcessId: p.parent,
      ProcessEndTime: '',
      ProcessGroupId: p.pid,
      ProcessStartTime: secondsString(p.startMs),
      RGID: uid === '0' ? '0' : '20',
      RUID: uid,
      RawProcessId: p.rawPid,
      SHA256HashData: b.sha256,
      SVGID: uid === '0' ? '0' : '20',
      SVUID: uid,
      SessionProcessId: p.parent,
      SourceProcessId: p.parent,
      SourceThreadId: '0',
      TargetProcessId: p.pid,
      UID: uid,
      UserName: uid === '0' ? 'root' : ((user ?? host.owner)?.userName ?? 'root'),
    };
  }

  processRollup2(rng: Rng, host: Host, tMs: number, p: LiveProcess, user?: User): FdrEvent {
    return { ...this.processFields(rng, host, p, user), ...this.envelope(rng, host, 'ProcessRollup2', tMs) };
  }

  /** Falcon's record of a process already running when the sensor started (or a rollup it synthesised). */
  syntheticProcessRollup2(rng: Rng, host: Host, tMs: number, p: LiveProcess, user?: User): FdrEvent {
    return {
      ...this.processFields(rng, host, p, user),
      ContextTimeStamp: this.contextTime(rng, tMs),
      SyntheticPR2Flags: host.platform === 'Win' ? '4' : '8',
      ...this.envelope(rng, host, 'SyntheticProcessRollup2', tMs),
    };
  }

  endOfProcess(rng: Rng, host: Host, tMs: number, p: LiveProcess): FdrEvent {
    return {
      ContextProcessId: p.pid,
      ContextThreadId: this.threadId(rng, host),
      ContextTimeStamp: this.contextTime(rng, tMs),
      CycleTime: String(rng.int(1000000, 900000000)),
      ExitCode: rng.chance(0.95) ? '0' : '1',
      KernelTime: String(rng.int(0, 400000)),
      ParentProcessId: p.parent,
      ProcessStartTime: secondsString(p.startMs),
      RawProcessId: p.rawPid,
      SHA256HashData: p.binary.sha256,
      TargetProcessId: p.pid,
      UserTime: String(rng.int(0, 2000000)),
      ...(host.platform === 'Win' ? { UserSid: host.owner?.sid ?? 'S-1-5-18', ImageSubsystem: '2' } : {}),
      ...this.envelope(rng, host, 'EndOfProcess', tMs),
    };
  }

  dnsRequest(
    rng: Rng,
    host: Host,
    tMs: number,
    p: LiveProcess,
    domain: string,
    ips: readonly string[],
  ): FdrEvent {
    const base: FdrEvent = {
      ContextProcessId: p.pid,
      ContextThreadId: this.threadId(rng, host),
      ContextTimeStamp: this.contextTime(rng, tMs),
      DomainName: domain,
      RequestType: '1',
    };
    if (host.platform === 'Win') {
      Object.assign(base, {
        CNAMERecords: '',
        ContextBaseFileName: p.binary.base,
        DnsRequestCount: '1',
        DualRequest: '0',
        FirstIP4Record: ips[0] ?? '',
        IP4Records: ips.length > 0 ? ips.join(';') + ';' : '',
        InterfaceIndex: String(rng.pick([0, 7, 12])),
        QueryStatus: ips.length > 0 ? '0' : '9003',
      });
    }
    return { ...base, ...this.envelope(rng, host, 'DnsRequest', tMs) };
  }

  networkConnectIP4(
    rng: Rng,
    host: Host,
    tMs: number,
    p: LiveProcess,
    remoteIp: string,
    remotePort: number,
    udp = false,
  ): FdrEvent {
    return {
      ConnectionDirection: '0',
      ConnectionFlags: '0',
      ContextBaseFileName: p.binary.base,
      ContextProcessId: p.pid,
      ContextTimeStamp: this.contextTime(rng, tMs),
      InContext: '0',
      LocalAddressIP4: host.localIp,
      LocalPort: String(rng.int(49152, 65535)),
      Protocol: udp ? '17' : '6',
      RemoteAddressIP4: remoteIp,
      RemotePort: String(remotePort),
      ...this.envelope(rng, host, 'NetworkConnectIP4', tMs),
    };
  }

  networkConnectIP6(
    rng: Rng,
    host: Host,
    tMs: number,
    p: LiveProcess,
    remoteIp6: string,
    remotePort: number,
  ): FdrEvent {
    return {
      ConnectionDirection: '0',
      ConnectionFlags: '0',
      ContextBaseFileName: p.binary.base,
      ContextProcessId: p.pid,
      ContextTimeStamp: this.contextTime(rng, tMs),
      InContext: '0',
      LocalAddressIP6: host.localIp6,
      LocalPort: String(rng.int(49152, 65535)),
      Protocol: '6',
      RemoteAddressIP6: remoteIp6,
      RemotePort: String(remotePort),
      ...this.envelope(rng, host, 'NetworkConnectIP6', tMs),
    };
  }

  networkListen(rng: Rng, host: Host, tMs: number, p: LiveProcess, port: number, ip6: boolean): FdrEvent {
    const type = ip6 ? 'NetworkListenIP6' : 'NetworkListenIP4';
    const addr: FdrEvent = ip6
      ? { LocalAddressIP6: rng.chance(0.7) ? '::' : host.localIp6, RemoteAddressIP6: '::' }
      : { LocalAddressIP4: rng.chance(0.7) ? '0.0.0.0' : host.localIp, RemoteAddressIP4: '0.0.0.0' };
    return {
      ConnectionDirection: '2',
      ConnectionFlags: '0',
      ContextProcessId: p.pid,
      ContextThreadId: this.threadId(rng, host),
      ContextTimeStamp: this.contextTime(rng, tMs),
      InContext: '0',
      ...addr,
      LocalPort: String(port),
      Protocol: '6',
      RemotePort: '0',
      ...this.envelope(rng, host, type, tMs),
    };
  }

  networkReceiveAcceptIP4(
    rng: Rng,
    host: Host,
    tMs: number,
    p: LiveProcess,
    localPort: number,
    remoteIp: string,
  ): FdrEvent {
    return {
      ConnectionDirection: '1',
      ConnectionFlags: '0',
      ContextBaseFileName: p.binary.base,
      ContextProcessId: p.pid,
      ContextTimeStamp: this.contextTime(rng, tMs),
      InContext: '0',
      LocalAddressIP4: host.localIp,
      LocalPort: String(localPort),
      Protocol: '6',
      RemoteAddressIP4: remoteIp,
      RemotePort: String(rng.int(1024, 65535)),
      ...this.envelope(rng, host, 'NetworkReceiveAcceptIP4', tMs),
    };
  }

  /** LogonType: 2 interactive, 3 network, 7 unlock, 10 remote interactive (RDP/SSH), 11 cached. */
  userLogon(
    rng: Rng,
    host: Host,
    tMs: number,
    user: User,
    logonType: number,
    lsass: LiveProcess | undefined,
  ): FdrEvent {
    const logonMs = tMs - rng.int(300, 4000);
    const fields: FdrEvent =
      host.platform === 'Win'
        ? {
            AuthenticationId: String(rng.int(1000000, 99999999)),
            AuthenticationPackage: logonType === 3 ? 'NTLM' : 'Kerberos',
            ClientComputerName: host.computerName,
            ContextProcessId: lsass?.pid ?? rng.digits(11),
            ContextThreadId: this.threadId(rng, host),
            ContextTimeStamp: this.contextTime(rng, tMs),
            LogonDomain: this.world.adDomain,
            LogonServer: 'DC01',
            LogonTime: secondsString(logonMs),
            LogonType: String(logonType),
            PasswordLastSet: secondsString(user.passwordLastSetMs),
            RemoteAccount: '0',
            UserFlags: '32',
            UserIsAdmin: user.isAdmin ? '1' : '0',
            UserLogonFlags: logonType === 10 ? '2' : '0',
            UserName: user.userName,
            UserPrincipal: user.principal,
            UserSid: user.sid,
          }
        : {
            ContextProcessId: lsass?.pid ?? rng.digits(18),
            ContextThreadId: '0',
            ContextTimeStamp: this.contextTime(rng, tMs),
            LogonTime: secondsString(logonMs),
            LogonType: String(logonType),
            PasswordLastSet: host.platform === 'Mac' ? secondsString(user.passwordLastSetMs) : '',
            UserIsAdmin: user.isAdmin ? '1' : '0',
            UserLogonFlags: host.platform === 'Mac' ? '6' : '0',
            UserName: user.userName,
            UserPrincipal: host.platform === 'Mac' ? `${user.userName}@${host.computerName}.local` : '',
            UserSid: user.sid,
          };
    return { ...fields, ...this.envelope(rng, host, 'UserLogon', tMs) };
  }

  userLogonFailed2(
    rng: Rng,
    host: Host,
    tMs: number,
    userName: string,
    remoteIp: string,
    logonType: number,
  ): FdrEvent {
    return {
      ClientComputerName: rng.chance(0.5) ? host.computerName : `WIN-${rng.hex(8).toUpperCase()}`,
      ContextProcessId: rng.digits(11),
      ContextThreadId: this.threadId(rng, host),
      ContextTimeStamp: this.contextTime(rng, tMs),
      LogonDomain: this.world.adDomain,
      LogonType: String(logonType),
      RawProcessId: String(rng.int(500, 1500)),
      RemoteAddressIP4: remoteIp,
      RemotePort: String(rng.int(1024, 65535)),
      // NTSTATUS: 0xC000006D logon failure, with 0xC000006A wrong password / 0xC0000064 no such user.
      Status: '3221225581',
      SubStatus: rng.chance(0.7) ? '3221225578' : '3221225572',
      UserName: userName,
      ...this.envelope(rng, host, 'UserLogonFailed2', tMs),
    };
  }

  suspiciousPeFileWritten(
    rng: Rng,
    host: Host,
    tMs: number,
    p: LiveProcess,
    targetFileName: string,
    sha256: string,
    md5: string,
  ): FdrEvent {
    return {
      ContextBaseFileName: p.binary.base,
      ContextImageFileName: p.binary.image,
      ContextProcessId: p.pid,
      ContextThreadId: this.threadId(rng, host),
      ContextTimeStamp: this.contextTime(rng, tMs),
      FileIdentifier: rng.hex(32),
      IsOnNetwork: '0',
      IsOnRemovableDisk: '0',
      MD5HashData: md5,
      SHA256HashData: sha256,
      Size: String(rng.int(40000, 4000000)),
      TargetFileName: targetFileName,
      UserName: host.owner?.userName ?? 'SYSTEM',
      ...this.envelope(rng, host, 'SuspiciousPeFileWritten', tMs),
    };
  }

  suspiciousRegAsepUpdate(
    rng: Rng,
    host: Host,
    tMs: number,
    p: LiveProcess,
    valueName: string,
    targetFileName: string,
    targetSha256: string,
    userSid: string,
  ): FdrEvent {
    const target = targetFileName.replace('\\Device\\HarddiskVolume3\\', 'C:\\');
    return {
      CommandLine: p.binary.commandLine,
      ContextProcessId: p.pid,
      ContextThreadId: this.threadId(rng, host),
      ContextTimeStamp: this.contextTime(rng, tMs),
      ImageFileName: p.binary.image,
      PatternId: '10',
      RegConfigClass: '40',
      RegConfigFlags: '0',
      RegConfigIndex: '1',
      RegConfigValueType: '0',
      RegKeyName: '',
      RegObjectName: `\\REGISTRY\\USER\\${userSid}\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`,
      RegOperationType: '1',
      RegStringValue: `"${target}" /background`,
      RegType: '1',
      RegValueName: valueName,
      TargetCommandLineParameters: '/background',
      TargetFileName: targetFileName,
      TargetSHA256HashData: targetSha256,
      ...this.envelope(rng, host, 'SuspiciousRegAsepUpdate', tMs),
    };
  }

  agentOnline(rng: Rng, host: Host, tMs: number): FdrEvent {
    return {
      AgentLoadFlags: '0',
      AgentLocalTime: this.contextTime(rng, tMs),
      AgentVersion: host.agentVersion,
      BiosManufacturer: host.biosManufacturer,
      BiosVersion: host.biosVersion,
      ChasisManufacturer: host.systemManufacturer,
      ChassisType: host.chassisType === 'Laptop' ? '9' : host.chassisType === 'Desktop' ? '3' : '1',
      ComputerName: host.computerName,
      ConfigIDBuild: host.configBuild.split('.')[2].replace(/^0+/, ''),
      ConfigurationVersion: '10',
      ContextTimeStamp: this.contextTime(rng, tMs),
      ProvisionState: '1',
      SensorGroupingTags: '',
      SystemManufacturer: host.systemManufacturer,
      SystemProductName: host.systemProductName,
      SystemSerialNumber: host.serial,
      ...this.envelope(rng, host, 'AgentOnline', tMs),
    };
  }

  sensorHeartbeat(rng: Rng, host: Host, tMs: number): FdrEvent {
    return {
      ConfigIDBuild: host.configBuild.split('.')[2].replace(/^0+/, ''),
      ConfigurationVersion: '10',
      NetworkContainmentState: '0',
      ProvisionState: '1',
      SensorStateBitMap: '0',
      ...this.envelope(rng, host, 'SensorHeartbeat', tMs),
    };
  }
}

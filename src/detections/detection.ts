/**
 * A detection is data: an id, what it means (title, severity, ATT&CK tags), what it reads,
 * how alerts are deduplicated, and the streaming queries that implement it. Built-ins are
 * TypeScript values; rule files (rules.ts) become the same shape.
 */
import type { TalonConfig } from '../config/config.js';
import type { QueryDefinition } from '../engine/query.js';
import type { Severity } from '../alerts/alerts.js';
import { parseDuration } from '../engine/duration.js';

/** The seed's parameters, resolved from the `detect` config section. */
export interface DetectSettings {
  vulnerablePorts: number[];
  knownServers: string[];
  learningPeriodMs: number;
  iocDedupWindowMs: number;
  /** Late rows up to this far behind the watermark are still processed (config `allowed_lateness`). */
  allowedLatenessMs: number;
  /** table (lower-case) → column (dotted for struct fields) → ioc_type */
  iocMappings: Record<string, Record<string, string>>;
}

export interface Detection {
  id: string;
  title: string;
  description: string;
  severity: Severity;
  /** ATT&CK technique tags, e.g. `attack.t1133` */
  tags: string[];
  /** Tables it reads as streams */
  sources: string[];
  /** Columns whose values identify one alert */
  dedupKey: string[];
  /** Alerts of one key within this window are one alert (0 = once ever). */
  windowMs: number;
  /** built-in or the rule file it came from */
  origin: string;
  queries(settings: DetectSettings): QueryDefinition[];
}

/**
 * The seed's `ioc_mappings`, plus ProcessRollup2 (the real-time twin of
 * SyntheticProcessRollup2 carries the same hashes).
 */
export const DEFAULT_IOC_MAPPINGS: Record<string, Record<string, string>> = {
  processrollup2: { MD5HashData: 'FileHash-MD5', SHA256HashData: 'FileHash-SHA256' },
  syntheticprocessrollup2: { MD5HashData: 'FileHash-MD5', SHA256HashData: 'FileHash-SHA256' },
  suspiciouspefilewritten: { SHA256HashData: 'FileHash-SHA256' },
  suspiciousregasepupdate: { TargetSHA256HashData: 'FileHash-SHA256' },
  dnsrequest: {
    DomainName: 'hostname',
    'DomainName_psl.registered_domain': 'domain',
    FirstIP4Record: 'IPv4',
  },
  networkconnectip4: { RemoteAddressIP4: 'IPv4' },
  networkreceiveacceptip4: { RemoteAddressIP4: 'IPv4' },
};

type DetectConfig = TalonConfig['detect'];

export function detectSettings(cfg: Partial<DetectConfig> = {}): DetectSettings {
  return {
    vulnerablePorts: cfg.vulnerable_ports ?? [3389, 139, 445, 2598, 1494],
    knownServers: cfg.known_servers ?? [],
    learningPeriodMs: parseDuration(cfg.learning_period ?? '1d'),
    iocDedupWindowMs: parseDuration(cfg.ioc_dedup_window ?? '24h'),
    allowedLatenessMs: parseDuration(cfg.allowed_lateness ?? '7d'),
    iocMappings: cfg.ioc_mappings ?? DEFAULT_IOC_MAPPINGS,
  };
}

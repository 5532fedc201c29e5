/**
 * Talon's configuration: `talon.yaml` (or --config FILE / TALON_CONFIG), every setting
 * overridable by a `TALON_*` environment variable and by command-line flags.
 *
 * Precedence (later wins): defaults < file < environment < flags.
 * Environment names: `TALON_` + the dotted path upper-cased with '.' → '__',
 * e.g. `TALON_LAKE`, `TALON_ENRICH__CITY_MMDB`, `TALON_INGEST__MAX_LINE_BYTES`.
 * `${VAR}` inside file values is replaced from the environment (for secrets).
 *
 * Each section is a zod schema with its defaults stated next to the option.
 */
import { z } from 'zod';
import { notifySchema, NOTIFY_DEFAULTS } from '../notify/settings.js';
import { intelSchema, INTEL_DEFAULTS } from '../intel/feeds/settings.js';

export const configSchema = z
  .object({
    /** Lake location: a folder or s3://bucket/prefix. */
    lake: z.string().default('./talon-lake'),
    ingest: z
      .object({
        /** Lines longer than this go to quarantine. */
        max_line_bytes: z
          .number()
          .int()
          .positive()
          .default(1024 * 1024),
        /** Raw line text kept in a quarantine row, at most. */
        quarantine_raw_bytes: z
          .number()
          .int()
          .positive()
          .default(64 * 1024),
        /** Events buffered per flush before they are written as one commit per table. */
        batch_events: z.number().int().positive().default(250_000),
        /** Parquet codec of the tables ingest creates (existing tables keep theirs). */
        parquet_codec: z.enum(['snappy', 'zstd', 'gzip', 'lz4', 'uncompressed']).default('snappy'),
        sqs: z
          .object({
            queue_url: z.string().optional(),
            region: z.string().optional(),
            endpoint: z.string().optional(),
            /** Seconds; extended while a batch is in work. */
            visibility_timeout: z.number().int().positive().default(300),
            wait_time_seconds: z.number().int().min(0).max(20).default(20),
            /** Messages per receive, 1–10 (an FDR message is a whole batch, so 1 by default). */
            max_messages: z.number().int().min(1).max(10).optional(),
            /** S3 endpoint for the FDR bucket when it differs from `endpoint` (MinIO, …). */
            s3_endpoint: z.string().optional(),
            force_path_style: z.boolean().optional(),
            /** A message that is not an FDR manifest: into quarantine and deleted, or left for the queue's DLQ. */
            malformed: z.enum(['quarantine', 'leave']).optional(),
            /** Where files are downloaded before they are ingested (default: the OS temp folder). */
            download_dir: z.string().optional(),
            /** GetObject attempts per file before the message is left for redelivery. */
            download_attempts: z.number().int().min(1).max(20).optional(),
            /** Files of one message downloaded at once. */
            download_concurrency: z.number().int().min(1).max(32).optional(),
          })
          .strict()
          .default({ visibility_timeout: 300, wait_time_seconds: 20 }),
        watch: z
          .object({
            paths: z.array(z.string()).default([]),
            /** A file is complete when its size stayed the same for this long. */
            stable_ms: z.number().int().positive().default(2000),
            /** Reads of a file that exists but cannot be read, before it is quarantined (read_error). */
            read_attempts: z.number().int().positive().default(5),
            /** Wait before the first re-read of such a file; doubles per attempt. */
            read_retry_ms: z.number().int().positive().default(1000),
          })
          .strict()
          .default({ paths: [], stable_ms: 2000, read_attempts: 5, read_retry_ms: 1000 }),
      })
      .strict()
      .default({
        max_line_bytes: 1024 * 1024,
        quarantine_raw_bytes: 64 * 1024,
        batch_events: 250_000,
        parquet_codec: 'snappy',
        sqs: { visibility_timeout: 300, wait_time_seconds: 20 },
        watch: { paths: [], stable_ms: 2000, read_attempts: 5, read_retry_ms: 1000 },
      }),
    enrich: z
      .object({
        /** MaxMind GeoIP2/GeoLite2 City .mmdb; default: bundled DB-IP City Lite. */
        city_mmdb: z.string().optional(),
        /** MaxMind GeoIP2/GeoLite2 ASN .mmdb; default: bundled @ip-location-db/asn CSV. */
        asn_mmdb: z.string().optional(),
        /**
         * Count the Public Suffix List's private section (github.io, duckdns.org, …) as public
         * suffixes, so DomainName_psl.registered_domain is the customer's name under them.
         */
        psl_private_domains: z.boolean().default(true),
      })
      .strict()
      .default({ psl_private_domains: true }),
    detect: z
      .object({
        /** The seed's vulnerable service ports: RDP, NetBIOS (139, 445), Citrix (2598, 1494). */
        vulnerable_ports: z.array(z.number().int().min(0).max(65535)).default([3389, 139, 445, 2598, 1494]),
        /** Approved servers (IPs or CIDRs, v4 or v6) allowed to run those services. */
        known_servers: z.array(z.string()).default([]),
        /** A user's logons this long after their first-ever logon build the baseline silently. */
        learning_period: z.string().default('1d'),
        /** IoC matches of one (aid, ioc_type, ioc) within this window raise one alert. */
        ioc_dedup_window: z.string().default('24h'),
        /**
         * How far behind the event-time watermark a late row is still deduplicated and alerted
         * (FDR batches arrive late and out of order); older rows are dropped and counted.
         */
        allowed_lateness: z.string().default('7d'),
        /** Table (lower-case) → {column → ioc_type}; default: the seed's mapping + ProcessRollup2. */
        ioc_mappings: z.record(z.string(), z.record(z.string(), z.string())).optional(),
        /** Folder of user rule files (*.yaml). */
        rules_dir: z.string().default('rules'),
        /** Detection ids not to run. */
        disabled: z.array(z.string()).default([]),
        /** Bounds of one micro-batch: Delta versions per source, and rows. */
        max_versions_per_batch: z.number().int().positive().default(1000),
        max_rows_per_batch: z.number().int().positive().default(2_000_000),
        /** Checkpoint files kept per query: those of the last N batches (Spark's minBatchesToRetain). */
        checkpoint_retain_batches: z.number().int().min(2).default(100),
        /** A sink or state table with this many small files is compacted after a batch (0 = never). */
        auto_compact_files: z.number().int().min(0).default(50),
        /** Continuous trigger: how often the sources' next log file is looked for. */
        poll_ms: z.number().int().positive().default(100),
      })
      .strict()
      .default({
        vulnerable_ports: [3389, 139, 445, 2598, 1494],
        known_servers: [],
        learning_period: '1d',
        ioc_dedup_window: '24h',
        allowed_lateness: '7d',
        rules_dir: 'rules',
        disabled: [],
        max_versions_per_batch: 1000,
        max_rows_per_batch: 2_000_000,
        checkpoint_retain_batches: 100,
        auto_compact_files: 50,
        poll_ms: 100,
      }),
    /** Alert notifications: destinations, routes, noise control (schema: src/notify/settings.ts). */
    notify: notifySchema.default(NOTIFY_DEFAULTS),
    /** Threat-intel feeds, IoC lifetimes, allow-list, retro-hunt (schema: src/intel/feeds/settings.ts). */
    intel: intelSchema.default(INTEL_DEFAULTS),
    /** Table upkeep by `talon run`: OPTIMIZE then VACUUM of every table (src/lake/maintenance.ts). */
    maintenance: z
      .object({
        /** How often a round runs; "0" turns it off. */
        interval: z.string().default('24h'),
        /** The first round, after start (not at once: a restart loop must not rewrite tables). */
        first_after: z.string().default('10m'),
        optimize: z.boolean().default(true),
        vacuum: z.boolean().default(true),
        /** Target size of a compacted file, bytes (default 128 MiB). */
        target_file_size: z.number().int().positive().optional(),
      })
      .strict()
      .default({ interval: '24h', first_after: '10m', optimize: true, vacuum: true }),
  })
  .strict();

export type TalonConfig = z.infer<typeof configSchema>;

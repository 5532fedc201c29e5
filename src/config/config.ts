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
        sqs: z
          .object({
            queue_url: z.string().optional(),
            region: z.string().optional(),
            endpoint: z.string().optional(),
            /** Seconds; extended while a batch is in work. */
            visibility_timeout: z.number().int().positive().default(300),
            wait_time_seconds: z.number().int().min(0).max(20).default(20),
          })
          .strict()
          .default({ visibility_timeout: 300, wait_time_seconds: 20 }),
        watch: z
          .object({
            paths: z.array(z.string()).default([]),
            /** A file is complete when its size stayed the same for this long. */
            stable_ms: z.number().int().positive().default(2000),
          })
          .strict()
          .default({ paths: [], stable_ms: 2000 }),
      })
      .strict()
      .default({
        max_line_bytes: 1024 * 1024,
        quarantine_raw_bytes: 64 * 1024,
        batch_events: 250_000,
        sqs: { visibility_timeout: 300, wait_time_seconds: 20 },
        watch: { paths: [], stable_ms: 2000 },
      }),
    enrich: z
      .object({
        /** MaxMind GeoIP2/GeoLite2 City .mmdb; default: bundled DB-IP City Lite. */
        city_mmdb: z.string().optional(),
        /** MaxMind GeoIP2/GeoLite2 ASN .mmdb; default: bundled @ip-location-db/asn CSV. */
        asn_mmdb: z.string().optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type TalonConfig = z.infer<typeof configSchema>;

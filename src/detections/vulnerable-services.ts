/**
 * The seed's "Monitoring for vulnerable services": a NetworkListen (IPv4 or IPv6) on an RDP,
 * NetBIOS or Citrix port by a device that is not an approved server.
 */
import type { Detection, DetectSettings } from './detection.js';
import type { QueryDefinition } from '../engine/query.js';
import { alertRowsSql, alertsSinkFor } from '../alerts/alerts.js';
import { columnOr, unionAll } from '../engine/operators.js';
import { AddressSet } from './cidr.js';
import { AIDMASTER, hostNames } from './host.js';
import { literal } from '../sql/duckdb.js';

const SOURCES = ['NetworkListenIP4', 'NetworkListenIP6'];

export const vulnerableServices: Detection = {
  id: 'vulnerable_services',
  title: 'Vulnerable service started on an unknown device',
  description:
    'A device that is not an approved server listens on a port of a commonly attacked service (RDP, NetBIOS, Citrix).',
  severity: 'high',
  tags: ['attack.initial_access', 'attack.t1133', 'attack.t1021.001', 'attack.t1190'],
  sources: SOURCES,
  dedupKey: ['aid', 'LocalPort'],
  windowMs: 24 * 3600_000,
  origin: 'built-in',
  queries(s: DetectSettings): QueryDefinition[] {
    const known = new AddressSet(s.knownServers);
    const ports = s.vulnerablePorts.map((p) => String(Math.trunc(p))).join(', ') || 'NULL';
    const meta = {
      detection: this.id,
      severity: this.severity,
      title: this.title,
      tags: this.tags,
      windowMs: this.windowMs,
    };
    return [
      {
        id: 'vulnerable_services',
        detection: this.id,
        description: this.description,
        sources: SOURCES.map((table) => ({
          table,
          columns: ['aip', 'aid', 'LocalPort', 'timestamp', 'aip_geo', 'aip_as', 'id'],
        })),
        snapshots: [AIDMASTER],
        operators: [
          'union(NetworkListenIP4, NetworkListenIP6)',
          `filter(LocalPort IN (${ports}))`,
          `filter(aip NOT IN known_servers[${s.knownServers.length}])`,
          'join(aidmaster → ComputerName)',
        ],
        sinks: [
          {
            name: 'vulnerable_services',
            table: 'vulnerable_services',
            mode: 'append',
            create: { partitionColumns: [] },
          },
          alertsSinkFor(meta.windowMs),
        ],
        async transform(batch) {
          const parts: string[] = [];
          for (const [key, rel] of batch.presentSources()) {
            const cols = await batch.columns(rel);
            parts.push(
              `(SELECT ${[
                columnOr(cols, 'aip', 'VARCHAR'),
                columnOr(cols, 'aid', 'VARCHAR'),
                columnOr(cols, 'LocalPort', 'BIGINT'),
                columnOr(cols, 'timestamp', 'TIMESTAMP'),
                cols.has('aip_geo') ? '"aip_geo"' : 'NULL AS aip_geo',
                cols.has('aip_as') ? '"aip_as"' : 'NULL AS aip_as',
                columnOr(cols, 'id', 'VARCHAR'),
                `${literal(key)} AS source_table`,
                '_commit_version AS source_version',
              ].join(
                ', ',
              )} FROM ${rel} WHERE CAST(${cols.get('localport') ?? 'NULL'} AS BIGINT) IN (${ports}))`,
            );
          }
          const union = unionAll(parts);
          if (!union) return {};
          const listens = await batch.temp('listens', union);
          // The allow-list check runs in TypeScript (exact v4/v6 CIDR math) over distinct
          // addresses only: a handful per batch, however many events.
          const aips = await batch.db.all<{ aip: string }>(
            `SELECT DISTINCT aip FROM ${listens} WHERE aip IS NOT NULL`,
          );
          const knownAips = aips.filter((r) => known.has(r.aip)).map((r) => r.aip);
          batch.metrics['known_server_events'] = knownAips.length
            ? await batch.count(
                `(SELECT 1 FROM ${listens} WHERE aip IN (${knownAips.map(literal).join(', ')}))`,
              )
            : 0;
          const hosts = await hostNames(batch);
          const flagged = await batch.temp(
            'flagged',
            `SELECT l.aip, l.aid, l.LocalPort, l.timestamp, l.aip_geo, l.aip_as,
                    ${hosts ? 'h.ComputerName' : 'NULL::VARCHAR AS ComputerName'},
                    l.id, l.source_table, l.source_version
             FROM ${listens} l ${hosts ? `LEFT JOIN ${hosts} h ON h.aid = l.aid` : ''}
             WHERE ${knownAips.length ? `l.aip IS NULL OR l.aip NOT IN (${knownAips.map(literal).join(', ')})` : 'true'}`,
          );
          const candidates = `(SELECT
              aid || '|' || CAST(LocalPort AS VARCHAR) AS dedup_key,
              timestamp AS event_time,
              NULL::VARCHAR AS title,
              'Vulnerable service port ' || CAST(LocalPort AS VARCHAR) || ' opened on ' ||
                coalesce(ComputerName, aid) || ' (aip ' || coalesce(aip, '?') || ')' AS description,
              aid, ComputerName AS host, NULL::VARCHAR AS "user",
              source_table AS evidence_table, source_version AS evidence_version,
              CAST(to_json(f) AS VARCHAR) AS evidence
            FROM ${flagged} f
            -- One alert per (aid, port, window): only the earliest listens of each can become its
            -- evidence, so the rest skip the JSON and hashing (a host re-listens at every boot).
            QUALIFY rank() OVER (
              PARTITION BY aid, LocalPort, floor(epoch_ms(timestamp) / ${meta.windowMs}) ORDER BY timestamp) = 1)`;
          return {
            vulnerable_services: `SELECT * EXCLUDE (source_table, source_version) FROM ${flagged}`,
            alerts: alertRowsSql(meta, candidates, batch.nowSql),
          };
        },
      },
    ];
  },
};

/**
 * The seed's "Logins from new locations": per batch, UserLogon grouped by (UserName,
 * aip_as.as_org) with max(timestamp) as last_used is MERGEd into `logon_locations`
 * (change data feed on); a second query reads that table's change feed and turns every
 * inserted row — a network this user never used before — into an alert.
 *
 * Learning period: a user's logons within `learning_period` of their first-ever logon
 * build the baseline without alerting (else the first day of data alerts on everyone).
 * To decide that from the change feed alone, each row also carries first_used (earliest
 * logon from that network) and user_first_seen (the user's earliest logon anywhere).
 */
import type { Detection, DetectSettings } from './detection.js';
import type { QueryDefinition } from '../engine/query.js';
import { alertRowsSql, alertsSinkFor } from '../alerts/alerts.js';
import { applyExpectations, columnOr } from '../engine/operators.js';
import { hostNames, AIDMASTER } from './host.js';
import { formatDuration } from '../engine/duration.js';
import { literal } from '../sql/duckdb.js';
import { RETRACT_ALERT } from '../engine/batch.js';

export const LOGON_LOCATIONS = 'logon_locations';

const EMPTY_LOCATIONS = `(SELECT NULL::VARCHAR AS UserName, NULL::VARCHAR AS network, NULL::TIMESTAMP AS last_used,
  NULL::TIMESTAMP AS first_used, NULL::TIMESTAMP AS user_first_seen, NULL::VARCHAR AS first_aid,
  NULL::VARCHAR AS first_aip WHERE false)`;

export const newLogonLocation: Detection = {
  id: 'new_logon_location',
  title: 'Logon from a new network location',
  description: 'A user logged in from a network (autonomous system) they have not used before.',
  severity: 'medium',
  tags: ['attack.initial_access', 'attack.t1078'],
  sources: ['UserLogon'],
  dedupKey: ['UserName', 'network'],
  windowMs: 0,
  origin: 'built-in',
  queries(s: DetectSettings): QueryDefinition[] {
    const meta = {
      detection: this.id,
      severity: this.severity,
      title: this.title,
      tags: this.tags,
      windowMs: 0,
    };
    const learning = s.learningPeriodMs;
    const merge: QueryDefinition = {
      id: 'new_logon_location.merge',
      detection: this.id,
      description: 'UserLogon → per-user networks (MERGE into logon_locations)',
      sources: [{ table: 'UserLogon', columns: ['UserName', 'aip_as', 'timestamp', 'aid', 'aip'] }],
      snapshots: [LOGON_LOCATIONS],
      stateTables: [LOGON_LOCATIONS],
      operators: [
        'expect_or_drop(UserName and aip_as.as_org present)',
        'groupBy(UserName, aip_as.as_org → network).agg(max(timestamp) as last_used)',
        'merge(logon_locations on UserName, network)',
      ],
      sinks: [
        {
          name: 'logon_locations',
          table: LOGON_LOCATIONS,
          mode: 'merge',
          merge: { on: ['UserName', 'network'], whenMatched: 'update', whenNotMatched: 'insert' },
          create: { properties: { 'delta.enableChangeDataFeed': 'true' } },
        },
      ],
      async transform(batch) {
        const rel = batch.source('UserLogon');
        if (!rel) return {};
        const cols = await batch.columns(rel);
        // Views: the projection, the expectations and the grouping run as one DuckDB pipeline
        // over the batch's UserLogon rows, nothing copied.
        const logons = await batch.view(
          'logons',
          `SELECT ${[
            columnOr(cols, 'UserName', 'VARCHAR'),
            columnOr(cols, 'aip_as.as_org', 'VARCHAR', 'network'),
            columnOr(cols, 'timestamp', 'TIMESTAMP'),
            columnOr(cols, 'aid', 'VARCHAR'),
            columnOr(cols, 'aip', 'VARCHAR'),
          ].join(', ')} FROM ${rel}`,
        );
        // A logon without a user or without a known network says nothing about locations.
        const valid = await applyExpectations(
          batch,
          logons,
          [
            { name: 'user_present', condition: `UserName IS NOT NULL AND UserName <> ''`, action: 'drop' },
            { name: 'network_known', condition: `network IS NOT NULL AND network <> ''`, action: 'drop' },
            { name: 'timestamp_present', condition: `timestamp IS NOT NULL`, action: 'drop' },
          ],
          { materialize: false },
        );
        const current = (await batch.snapshot(LOGON_LOCATIONS)) ?? EMPTY_LOCATIONS;
        const grouped = `SELECT UserName, network, max(timestamp) AS last_used, min(timestamp) AS first_used,
            arg_min(aid, timestamp) AS first_aid, arg_min(aip, timestamp) AS first_aip
          FROM ${valid} GROUP BY UserName, network`;
        // Carry the earliest/latest values over from the table: MERGE's update replaces the
        // whole row, and a late batch must not move first_used forward or last_used back.
        // When a late batch moves a user's first-ever logon earlier, every network of that
        // user is rewritten with the new anchor, so the alerts query re-decides the learning
        // period for all of them from the change feed (arrival order must not matter).
        return {
          logon_locations: `
            WITH g AS (${grouped}),
            cur AS (SELECT * FROM ${current} c),
            user_first AS (
              SELECT UserName, min(t) AS t FROM (
                SELECT UserName, first_used AS t FROM g
                UNION ALL SELECT UserName, user_first_seen FROM cur WHERE UserName IN (SELECT UserName FROM g)
              ) GROUP BY UserName)
            SELECT g.UserName, g.network,
              greatest(g.last_used, cur.last_used) AS last_used,
              least(g.first_used, cur.first_used) AS first_used,
              u.t AS user_first_seen,
              coalesce(cur.first_aid, g.first_aid) AS first_aid,
              coalesce(cur.first_aip, g.first_aip) AS first_aip
            FROM g LEFT JOIN cur ON cur.UserName = g.UserName AND cur.network = g.network
            JOIN user_first u ON u.UserName = g.UserName
            UNION ALL
            SELECT cur.UserName, cur.network, cur.last_used, cur.first_used, u.t AS user_first_seen,
              cur.first_aid, cur.first_aip
            FROM cur JOIN user_first u ON u.UserName = cur.UserName
            WHERE u.t < cur.user_first_seen
              AND NOT EXISTS (SELECT 1 FROM g WHERE g.UserName = cur.UserName AND g.network = cur.network)`,
        };
      },
    };
    const alerts: QueryDefinition = {
      id: 'new_logon_location.alerts',
      detection: this.id,
      description: 'Change feed of logon_locations (inserts) → alerts',
      // Inserts are new (user, network) pairs; updates matter when a late logon moved the
      // pair's first use or the user's first-ever logon earlier (the decision may change).
      sources: [{ table: LOGON_LOCATIONS, changeTypes: ['insert', 'update_preimage', 'update_postimage'] }],
      snapshots: [AIDMASTER],
      operators: [
        "readChangeFeed(_change_type IN ('insert', 'update_postimage'))",
        `filter(first_used >= user_first_seen + learning_period ${formatDuration(learning)})`,
        'withdraw(alerts of pairs whose first use or learning decision changed)',
      ],
      sinks: [alertsSinkFor(meta.windowMs)],
      async transform(batch) {
        const rel = batch.source(LOGON_LOCATIONS);
        if (!rel) return {};
        const hosts = await hostNames(batch);
        // Per pair: its last image in this batch, and the image before the batch (the first
        // preimage; none when the pair was inserted in this batch).
        const changes = await batch.temp(
          'changes',
          `WITH last AS (
             SELECT * FROM ${rel} WHERE _change_type IN ('insert', 'update_postimage')
             QUALIFY row_number() OVER (PARTITION BY UserName, network ORDER BY _commit_version DESC) = 1),
           inserted AS (SELECT DISTINCT UserName, network FROM ${rel} WHERE _change_type = 'insert'),
           before AS (
             SELECT UserName, network, first_used AS pre_first_used, user_first_seen AS pre_user_first_seen
             FROM ${rel} WHERE _change_type = 'update_preimage'
             QUALIFY row_number() OVER (PARTITION BY UserName, network ORDER BY _commit_version) = 1)
           SELECT l.*, i.UserName IS NULL AS existed,
             l.first_used >= l.user_first_seen + to_milliseconds(${learning}) AS alerting
           FROM last l
             LEFT JOIN inserted i ON i.UserName = l.UserName AND i.network = l.network
             LEFT JOIN before b ON b.UserName = l.UserName AND b.network = l.network
           WHERE i.UserName IS NOT NULL
              OR b.pre_first_used IS DISTINCT FROM l.first_used
              OR b.pre_user_first_seen IS DISTINCT FROM l.user_first_seen`,
        );
        // A pair that existed before this batch and changed: its alert (if any) no longer
        // matches — replaced by the alert the pair raises now, or closed when it raises none.
        const revised = await batch.db.all<{ k: string; t: string; alerting: boolean }>(
          `SELECT UserName || '|' || network AS k, CAST(first_used AS VARCHAR) AS t, alerting
           FROM ${changes} WHERE existed`,
        );
        for (const r of revised) {
          batch.retract(
            'alerts',
            `detection = ${literal(meta.detection)} AND dedup_key = ${literal(r.k)}` +
              (r.alerting ? ` AND (event_time <> TIMESTAMP ${literal(r.t)} OR status = 'closed')` : ''),
            RETRACT_ALERT,
          );
        }
        const fresh = await batch.temp(
          'fresh',
          `SELECT n.*, ${hosts ? 'h.ComputerName' : 'NULL::VARCHAR AS ComputerName'} FROM ${changes} n
           ${hosts ? 'LEFT JOIN ' + hosts + ' h ON h.aid = n.first_aid' : ''}
           WHERE n.alerting`,
        );
        batch.metrics['learning_period_suppressed'] =
          (await batch.count(changes)) - (await batch.count(fresh));
        batch.metrics['revised_pairs'] = revised.length;
        const candidates = `(SELECT
            UserName || '|' || network AS dedup_key,
            first_used AS event_time,
            NULL::VARCHAR AS title,
            'User ' || UserName || ' has logged in from a new network ''' || network || ''' at ' ||
              strftime(first_used, '%Y-%m-%dT%H:%M:%S.%gZ') AS description,
            first_aid AS aid, ComputerName AS host, UserName AS "user",
            ${"'" + LOGON_LOCATIONS + "'"} AS evidence_table, _commit_version AS evidence_version,
            CAST(to_json({'UserName': UserName, 'network': network, 'first_used': first_used, 'last_used': last_used,
              'user_first_seen': user_first_seen, 'aid': first_aid, 'aip': first_aip}) AS VARCHAR) AS evidence
          FROM ${fresh})`;
        return { alerts: alertRowsSql(meta, candidates, batch.nowSql) };
      },
    };
    return [merge, alerts];
  },
};

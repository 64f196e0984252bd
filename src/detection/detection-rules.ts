import { DetectionRule, DetectionThresholds } from '../config/app-config';
import { FindingCandidate } from './finding';
import { SOURCE_SQL, sourceOf } from './finding-source';

export type Query = (sql: string, parameters: unknown[]) => Promise<unknown[]>;

/** One rule over the recent audit rows: SQL with bound parameters, never interpolated input. */
export interface SqlRule {
  rule: DetectionRule;
  evaluate(query: Query, since: Date, thresholds: DetectionThresholds): Promise<FindingCandidate[]>;
}

/** Wrong guesses: the attempts that reached the password check and failed. */
const GUESS_OUTCOMES = `('bad_password', 'unknown_user')`;

interface Row {
  subject: string;
  first_seen: Date | string;
  last_seen: Date | string;
  [column: string]: unknown;
}

function asDate(value: Date | string): Date {
  return value instanceof Date ? value : new Date(value);
}

function counts(row: Row, columns: string[]): Record<string, number> {
  return Object.fromEntries(columns.map((column) => [column, Number(row[column])]));
}

/**
 * One source (address, or IPv6 /64) trying many distinct usernames, nearly all wrong. Many users
 * behind one NAT address do not match: their attempts mostly succeed, so the ratio stays low.
 */
const credentialStuffing: SqlRule = {
  rule: 'credential_stuffing',
  async evaluate(query, since, thresholds) {
    const rows = (await query(
      `SELECT source AS subject,
              count(DISTINCT username) FILTER (WHERE outcome IN ${GUESS_OUTCOMES}) AS usernames,
              coalesce(sum(count) FILTER (WHERE outcome IN ${GUESS_OUTCOMES}), 0) AS failures,
              coalesce(sum(count) FILTER (WHERE outcome = 'success'), 0) AS successes,
              min(occurred_at) AS first_seen, max(occurred_at) AS last_seen
         FROM (SELECT ${SOURCE_SQL} AS source, outcome, username, count, occurred_at
                 FROM login_attempts
                WHERE occurred_at >= $1 AND client_ip IS NOT NULL
                  AND outcome IN ('success', 'bad_password', 'unknown_user')) recent
        GROUP BY source
       HAVING count(DISTINCT username) FILTER (WHERE outcome IN ${GUESS_OUTCOMES}) >= $2
          AND coalesce(sum(count) FILTER (WHERE outcome IN ${GUESS_OUTCOMES}), 0)
              >= $3::float8 * sum(count)`,
      [since.toISOString(), thresholds.stuffingMinUsernames, thresholds.stuffingFailureRatio],
    )) as Row[];
    return rows.map((row) => ({
      rule: 'credential_stuffing',
      severity: 'high',
      subject: sourceOf(row.subject),
      subjectKind: 'source',
      firstSeen: asDate(row.first_seen),
      lastSeen: asDate(row.last_seen),
      evidence: counts(row, ['usernames', 'failures', 'successes']),
    }));
  },
};

/** One username failing from many sources: guesses spread to stay under per-source limits. */
const distributedBruteForce: SqlRule = {
  rule: 'distributed_brute_force',
  async evaluate(query, since, thresholds) {
    const rows = (await query(
      `SELECT username AS subject, count(DISTINCT ${SOURCE_SQL}) AS sources,
              sum(count) AS failures, min(occurred_at) AS first_seen, max(occurred_at) AS last_seen
         FROM login_attempts
        WHERE occurred_at >= $1 AND username IS NOT NULL AND client_ip IS NOT NULL
          AND outcome IN ('bad_password', 'unknown_user', 'locked')
        GROUP BY username
       HAVING count(DISTINCT ${SOURCE_SQL}) >= $2 AND sum(count) >= $3`,
      [since.toISOString(), thresholds.bruteForceMinSources, thresholds.bruteForceMinFailures],
    )) as Row[];
    return rows.map((row) => ({
      rule: 'distributed_brute_force',
      severity: 'high',
      subject: row.subject,
      subjectKind: 'username',
      firstSeen: asDate(row.first_seen),
      lastSeen: asDate(row.last_seen),
      evidence: counts(row, ['sources', 'failures']),
    }));
  },
};

/** One certificate presented with several usernames: a shared or stolen certificate. */
const sharedCertificate: SqlRule = {
  rule: 'shared_certificate',
  async evaluate(query, since, thresholds) {
    const rows = (await query(
      `SELECT cert_fingerprint AS subject, count(DISTINCT username) AS usernames,
              sum(count) AS attempts, min(occurred_at) AS first_seen, max(occurred_at) AS last_seen
         FROM login_attempts
        WHERE occurred_at >= $1 AND cert_fingerprint IS NOT NULL AND username IS NOT NULL
        GROUP BY cert_fingerprint
       HAVING count(DISTINCT username) >= $2`,
      [since.toISOString(), thresholds.sharedCertificateMinUsernames],
    )) as Row[];
    return rows.map((row) => ({
      rule: 'shared_certificate',
      severity: 'medium',
      subject: row.subject.trim(),
      subjectKind: 'fingerprint',
      firstSeen: asDate(row.first_seen),
      lastSeen: asDate(row.last_seen),
      evidence: counts(row, ['usernames', 'attempts']),
    }));
  },
};

/** A success on an account after many failures on it: a guess that may have come true. */
const successAfterFailures: SqlRule = {
  rule: 'success_after_failures',
  async evaluate(query, since, thresholds) {
    const rows = (await query(
      `WITH successes AS (
         SELECT username, max(occurred_at) AS success_at
           FROM login_attempts
          WHERE occurred_at >= $1 AND outcome = 'success' AND username IS NOT NULL
          GROUP BY username)
       SELECT s.username AS subject, sum(f.count) AS failures,
              count(DISTINCT f.client_ip) AS sources,
              min(f.occurred_at) AS first_seen, s.success_at AS last_seen
         FROM successes s
         JOIN login_attempts f
           ON f.username = s.username AND f.occurred_at >= $1 AND f.occurred_at < s.success_at
          AND f.outcome IN ('bad_password', 'locked')
        GROUP BY s.username, s.success_at
       HAVING sum(f.count) >= $2`,
      [since.toISOString(), thresholds.successAfterFailures],
    )) as Row[];
    return rows.map((row) => ({
      rule: 'success_after_failures',
      severity: 'high',
      subject: row.subject,
      subjectKind: 'username',
      firstSeen: asDate(row.first_seen),
      lastSeen: asDate(row.last_seen),
      evidence: counts(row, ['failures', 'sources']),
    }));
  },
};

/** Lockouts on logins that presented a certificate: its budget is being spent by guesses. */
const certificateLockouts: SqlRule = {
  rule: 'certificate_lockouts',
  async evaluate(query, since, thresholds) {
    const rows = (await query(
      `SELECT cert_fingerprint AS subject, sum(count) AS lockouts,
              count(DISTINCT username) AS usernames,
              min(occurred_at) AS first_seen, max(occurred_at) AS last_seen
         FROM login_attempts
        WHERE occurred_at >= $1 AND outcome = 'locked' AND cert_fingerprint IS NOT NULL
        GROUP BY cert_fingerprint
       HAVING sum(count) >= $2`,
      [since.toISOString(), thresholds.certificateLockoutsMin],
    )) as Row[];
    return rows.map((row) => ({
      rule: 'certificate_lockouts',
      severity: 'medium',
      subject: row.subject.trim(),
      subjectKind: 'fingerprint',
      firstSeen: asDate(row.first_seen),
      lastSeen: asDate(row.last_seen),
      evidence: counts(row, ['lockouts', 'usernames']),
    }));
  },
};

/** The rules the leader evaluates over the shared audit table. */
export const SQL_RULES: readonly SqlRule[] = [
  credentialStuffing,
  distributedBruteForce,
  sharedCertificate,
  successAfterFailures,
  certificateLockouts,
];

/**
 * The busiest source's share of recent wrong guesses, or 0 below `minimumFailures` (a handful of
 * typos from one office is not a signal).
 */
export async function dominantFailureSourceRatio(
  query: Query,
  since: Date,
  minimumFailures: number,
): Promise<number> {
  const rows = (await query(
    `SELECT coalesce(max(failures)::float8 / nullif(sum(failures), 0), 0) AS ratio,
            coalesce(sum(failures), 0) AS total
       FROM (SELECT sum(count) AS failures FROM login_attempts
              WHERE occurred_at >= $1 AND client_ip IS NOT NULL AND outcome IN ${GUESS_OUTCOMES}
              GROUP BY ${SOURCE_SQL}) per_source`,
    [since.toISOString()],
  )) as Array<{ ratio: number | string; total: number | string }>;
  const row = rows[0];
  return row && Number(row.total) >= minimumFailures ? Number(row.ratio) : 0;
}

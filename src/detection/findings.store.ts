import { DataSource } from 'typeorm';
import { DetectionMode } from '../config/app-config';
import { Finding, FindingCandidate, FindingStatus } from './finding';

interface FindingRow {
  id: string;
  rule: Finding['rule'];
  severity: Finding['severity'];
  mode: DetectionMode;
  subject: string;
  first_seen: Date | string;
  last_seen: Date | string;
  evidence: Record<string, unknown> | string;
  status: FindingStatus;
  inserted?: boolean;
}

const COLUMNS = 'id, rule, severity, mode, subject, first_seen, last_seen, evidence, status';

function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

export function toFinding(row: FindingRow): Finding {
  return {
    id: row.id,
    rule: row.rule,
    severity: row.severity,
    mode: row.mode,
    subject: row.subject,
    first_seen: iso(row.first_seen),
    last_seen: iso(row.last_seen),
    evidence:
      typeof row.evidence === 'string'
        ? (JSON.parse(row.evidence) as Record<string, unknown>)
        : row.evidence,
    status: row.status,
  };
}

/** A page position: the last item's (last_seen, id), newest first. */
export interface FindingCursor {
  lastSeen: string;
  id: string;
}

/**
 * The `findings` table. One row per incident: its key is rule, subject and the window bucket the
 * incident began in, so replicas and repeated evaluations meet on the same row.
 */
export class FindingsStore {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Stores a candidate, extending the open incident of the same rule and subject when it was
   * seen within the last window, and says whether this created the finding.
   */
  async upsert(
    candidate: FindingCandidate,
    mode: DetectionMode,
    windowMs: number,
  ): Promise<{ finding: Finding; created: boolean }> {
    const incidentKey = await this.incidentKey(candidate, windowMs);
    const rows = (await this.dataSource.query(
      `INSERT INTO findings (rule, severity, mode, subject, incident_key, first_seen, last_seen,
                             evidence)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)
       ON CONFLICT (incident_key) DO UPDATE
         SET first_seen = LEAST(findings.first_seen, EXCLUDED.first_seen),
             last_seen = GREATEST(findings.last_seen, EXCLUDED.last_seen),
             evidence = EXCLUDED.evidence,
             mode = EXCLUDED.mode,
             updated_at = now()
       RETURNING ${COLUMNS}, (xmax::text = '0') AS inserted`,
      [
        candidate.rule,
        candidate.severity,
        mode,
        candidate.subject,
        incidentKey,
        candidate.firstSeen.toISOString(),
        candidate.lastSeen.toISOString(),
        JSON.stringify(candidate.evidence),
      ],
    )) as FindingRow[];
    return { finding: toFinding(rows[0]), created: rows[0].inserted === true };
  }

  async list(options: {
    limit: number;
    cursor?: FindingCursor;
    status?: FindingStatus;
    rule?: string;
  }): Promise<Finding[]> {
    const conditions: string[] = [];
    const parameters: unknown[] = [];
    if (options.cursor) {
      parameters.push(options.cursor.lastSeen, options.cursor.id);
      conditions.push(`(last_seen, id) < ($1::timestamptz, $2::uuid)`);
    }
    if (options.status) {
      parameters.push(options.status);
      conditions.push(`status = $${parameters.length}`);
    }
    if (options.rule) {
      parameters.push(options.rule);
      conditions.push(`rule = $${parameters.length}`);
    }
    parameters.push(options.limit);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const rows = (await this.dataSource.query(
      `SELECT ${COLUMNS} FROM findings ${where}
        ORDER BY last_seen DESC, id DESC LIMIT $${parameters.length}`,
      parameters,
    )) as FindingRow[];
    return rows.map(toFinding);
  }

  async setStatus(id: string, status: FindingStatus): Promise<Finding | undefined> {
    const rows = (await this.dataSource.query(
      `UPDATE findings SET status = $2, updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, status],
    )) as [FindingRow[], number] | FindingRow[];
    const updated = Array.isArray(rows[0]) ? (rows[0] as FindingRow[]) : (rows as FindingRow[]);
    return updated[0] ? toFinding(updated[0]) : undefined;
  }

  private async incidentKey(candidate: FindingCandidate, windowMs: number): Promise<string> {
    const continuing = (await this.dataSource.query(
      `SELECT incident_key FROM findings
        WHERE rule = $1 AND subject = $2 AND last_seen >= $3
        ORDER BY last_seen DESC LIMIT 1`,
      [candidate.rule, candidate.subject, new Date(candidate.firstSeen.getTime() - windowMs)],
    )) as Array<{ incident_key: string }>;
    if (continuing[0]) {
      return continuing[0].incident_key;
    }
    const bucket = Math.floor(candidate.firstSeen.getTime() / windowMs);
    return `${candidate.rule}:${candidate.subject}:${bucket}`;
  }
}

import { AttemptMethod, AttemptOutcome } from '../common/attempt-outcome';

/** One row of `login_attempts`. Never holds a password or any part of one. */
export interface AttemptRecord {
  id: string;
  occurredAt: Date;
  method: AttemptMethod;
  outcome: AttemptOutcome;
  count: number;
  /** Normalised name of a resolved user, otherwise the keyed hash of what was sent. */
  username: string | null;
  usernameLength: number | null;
  userId: string | null;
  clientIp: string | null;
  forwardedFor: string | null;
  userAgent: string | null;
  certFingerprint: string | null;
  certSubject: string | null;
  certIssuer: string | null;
  certSerial: string | null;
  requestId: string | null;
  instanceId: string;
  latencyMs: number | null;
  /**
   * In memory only, never written: the normalised name of an attempt refused before any user
   * lookup. The writer resolves these in one query per batch, so a refusal aimed at a real
   * account is recorded under its name without costing the login path a lookup.
   */
  unresolvedUsername?: string;
}

export const ATTEMPT_COLUMNS: Array<[keyof AttemptRecord, string, string]> = [
  ['id', 'id', 'uuid'],
  ['occurredAt', 'occurred_at', 'timestamptz'],
  ['method', 'method', 'text'],
  ['outcome', 'outcome', 'text'],
  ['count', 'count', 'int4'],
  ['username', 'username', 'text'],
  ['usernameLength', 'username_length', 'int4'],
  ['userId', 'user_id', 'uuid'],
  ['clientIp', 'client_ip', 'inet'],
  ['forwardedFor', 'forwarded_for', 'text'],
  ['userAgent', 'user_agent', 'text'],
  ['certFingerprint', 'cert_fingerprint', 'text'],
  ['certSubject', 'cert_subject', 'text'],
  ['certIssuer', 'cert_issuer', 'text'],
  ['certSerial', 'cert_serial', 'text'],
  ['requestId', 'request_id', 'text'],
  ['instanceId', 'instance_id', 'text'],
  ['latencyMs', 'latency_ms', 'int4'],
];

/**
 * One multi-row INSERT through unnest() of bound arrays: a fixed parameter count whatever the
 * batch size, and it works on the embedded database, where COPY FROM STDIN hangs.
 */
export function buildAttemptInsert(rows: AttemptRecord[]): { sql: string; parameters: unknown[] } {
  const columns = ATTEMPT_COLUMNS.map(([, column]) => column).join(', ');
  const arrays = ATTEMPT_COLUMNS.map(([, , type], index) => `$${index + 1}::${type}[]`).join(', ');
  const parameters = ATTEMPT_COLUMNS.map(([field]) =>
    rows.map((row) => (field === 'occurredAt' ? row.occurredAt.toISOString() : row[field])),
  );
  return {
    sql: `INSERT INTO login_attempts (${columns}) SELECT * FROM unnest(${arrays})`,
    parameters,
  };
}

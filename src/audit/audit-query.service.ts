import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { GatehouseError } from '../common/gatehouse.error';
import { formatDuration } from '../config/duration';
import {
  ATTEMPT_CURSOR_CODEC,
  AttemptCursor,
  AttemptCursorCodec,
  InvalidCursorError,
  preciseTimestamp,
} from './audit-cursor';
import {
  AttemptExportQuery,
  AttemptFilters,
  AttemptListQuery,
  SortDirection,
} from './audit-parameters';
import { USERNAME_DIGEST } from './audit.tokens';
import { UsernameDigest } from './username-digest';

/** One attempt as the API shows it: the `login_attempts` columns, snake_case. */
export interface AttemptItem {
  id: string;
  occurred_at: string;
  count: number;
  username: string | null;
  username_length: number | null;
  user_id: string | null;
  client_ip: string | null;
  forwarded_for: string | null;
  user_agent: string | null;
  cert_fingerprint: string | null;
  cert_subject: string | null;
  cert_issuer: string | null;
  cert_serial: string | null;
  request_id: string | null;
  instance_id: string;
  latency_ms: number | null;
  method: string;
  outcome: string;
}

export const ATTEMPT_ITEM_FIELDS: ReadonlyArray<keyof AttemptItem> = [
  'id',
  'occurred_at',
  'count',
  'username',
  'username_length',
  'user_id',
  'client_ip',
  'forwarded_for',
  'user_agent',
  'cert_fingerprint',
  'cert_subject',
  'cert_issuer',
  'cert_serial',
  'request_id',
  'instance_id',
  'latency_ms',
  'method',
  'outcome',
];

export interface AttemptPage {
  items: AttemptItem[];
  next_cursor: string | null;
  settled_until: string;
}

export interface AttemptExport {
  settledUntil: string;
  rows: AsyncGenerator<AttemptItem>;
}

export interface AuditSummary {
  window: string;
  since: string;
  until: string;
  outcomes: Record<string, number>;
  top_source_ips: Array<{ client_ip: string; failures: number }>;
  top_usernames: Array<{ username: string; attempts: number; failures: number }>;
  shared_certificates: Array<{ cert_fingerprint: string; usernames: number; attempts: number }>;
}

const SUMMARY_TOP = 10;
const EXPORT_BATCH_SIZE = 2000;
/** A writer whose heartbeat is older than this is gone; its rows are all older anyway. */
const WRITER_FRESHNESS = '10 seconds';
const PRECISE_UTC = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

const ITEM_COLUMNS = `id::text AS id,
  to_char(occurred_at AT TIME ZONE 'UTC', ${PRECISE_UTC}) AS occurred_at,
  count, username, username_length, user_id::text AS user_id, host(client_ip) AS client_ip,
  forwarded_for, user_agent, cert_fingerprint, cert_subject, cert_issuer, cert_serial,
  request_id, instance_id, latency_ms, method, outcome`;

// The only two orders there are; the direction never comes from the request as text.
// Qualified, because the bare names are the text output columns of ITEM_COLUMNS.
const ORDER_BY: Record<SortDirection, string> = {
  desc: 'ORDER BY attempt.occurred_at DESC, attempt.id DESC',
  asc: 'ORDER BY attempt.occurred_at ASC, attempt.id ASC',
};
const BEYOND: Record<SortDirection, string> = { desc: '<', asc: '>' };

/** Bound parameters of one statement: values go in the array, only `$n` into the SQL text. */
class StatementParameters {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

interface Walk {
  filters: AttemptFilters;
  sort: SortDirection;
  bound: string;
  since: string | null;
  until: string | null;
}

/**
 * The read side of the audit trail. Paging is keyset on (occurred_at, id) below a bound fixed
 * by the first page: the instant before which every live writer has committed everything.
 * Replicas commit their batches out of order, so rows above that bound may still appear below
 * rows already seen; the walk leaves them out, and a later walk (a new first page) finds them.
 */
@Injectable()
export class AuditQueryService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(USERNAME_DIGEST) private readonly usernameDigest: UsernameDigest,
    @Inject(ATTEMPT_CURSOR_CODEC) private readonly cursors: AttemptCursorCodec,
  ) {}

  async listAttempts(query: AttemptListQuery): Promise<AttemptPage> {
    const position = query.cursor === undefined ? undefined : this.decodeCursor(query);
    const walk: Walk = position
      ? {
          filters: query.filters,
          sort: query.sort,
          bound: position.bound,
          since: position.since,
          until: position.until,
        }
      : await this.startWalk(query.filters, query.sort);
    const rows = await this.fetch(walk, position, query.limit + 1);
    const items = rows.slice(0, query.limit);
    const last = items.at(-1);
    const nextCursor =
      rows.length > query.limit && last !== undefined
        ? this.cursors.encode(
            { bound: walk.bound, occurredAt: last.occurred_at, id: last.id, ...this.range(walk) },
            query.scope,
          )
        : null;
    return { items, next_cursor: nextCursor, settled_until: walk.bound };
  }

  async findAttempt(id: string): Promise<AttemptItem> {
    const rows = (await this.dataSource.query(
      `SELECT ${ITEM_COLUMNS} FROM login_attempts WHERE id = $1::uuid LIMIT 1`,
      [id],
    )) as AttemptItem[];
    if (rows.length === 0) {
      throw new GatehouseError('not_found', { detail: 'no attempt with this id' });
    }
    return rows[0];
  }

  /**
   * Opens an export: the bound and the first batch are read before anything is sent, so a
   * database that is down answers 503 rather than an empty file. Later batches are read as the
   * client consumes them, one keyset batch at a time; the range is never held in memory.
   */
  async openExport(query: AttemptExportQuery): Promise<AttemptExport> {
    const walk = await this.startWalk(query.filters, query.sort);
    const first = await this.fetch(walk, undefined, EXPORT_BATCH_SIZE);
    return { settledUntil: walk.bound, rows: this.exportRows(walk, first) };
  }

  async summarize(windowMs: number): Promise<AuditSummary> {
    const [{ since, until }] = (await this.dataSource.query(
      `SELECT to_char((now() - $1::bigint * interval '1 millisecond') AT TIME ZONE 'UTC',
                      ${PRECISE_UTC}) AS since,
              to_char(now() AT TIME ZONE 'UTC', ${PRECISE_UTC}) AS until`,
      [windowMs],
    )) as Array<{ since: string; until: string }>;
    const range = [since, until];
    const inWindow = 'occurred_at >= $1::timestamptz AND occurred_at < $2::timestamptz';
    const [outcomes, sources, usernames, certificates] = await Promise.all([
      this.dataSource.query(
        `SELECT outcome, sum(count)::bigint AS attempts FROM login_attempts
         WHERE ${inWindow} GROUP BY outcome ORDER BY outcome`,
        range,
      ) as Promise<Array<{ outcome: string; attempts: string }>>,
      this.dataSource.query(
        `SELECT host(client_ip) AS client_ip, sum(count)::bigint AS failures FROM login_attempts
         WHERE ${inWindow} AND outcome <> 'success' AND client_ip IS NOT NULL
         GROUP BY client_ip ORDER BY failures DESC, client_ip LIMIT ${SUMMARY_TOP}`,
        range,
      ) as Promise<Array<{ client_ip: string; failures: string }>>,
      this.dataSource.query(
        `SELECT username, sum(count)::bigint AS attempts,
                (sum(count) FILTER (WHERE outcome <> 'success'))::bigint AS failures
         FROM login_attempts WHERE ${inWindow} AND username IS NOT NULL
         GROUP BY username ORDER BY failures DESC NULLS LAST, attempts DESC, username
         LIMIT ${SUMMARY_TOP}`,
        range,
      ) as Promise<Array<{ username: string; attempts: string; failures: string | null }>>,
      this.dataSource.query(
        `SELECT cert_fingerprint, count(DISTINCT username)::int AS usernames,
                sum(count)::bigint AS attempts
         FROM login_attempts
         WHERE ${inWindow} AND cert_fingerprint IS NOT NULL AND username IS NOT NULL
         GROUP BY cert_fingerprint HAVING count(DISTINCT username) > 1
         ORDER BY usernames DESC, attempts DESC, cert_fingerprint LIMIT ${SUMMARY_TOP}`,
        range,
      ) as Promise<Array<{ cert_fingerprint: string; usernames: number; attempts: string }>>,
    ]);
    return {
      window: formatDuration(windowMs),
      since,
      until,
      outcomes: Object.fromEntries(outcomes.map((row) => [row.outcome, Number(row.attempts)])),
      top_source_ips: sources.map((row) => ({
        client_ip: row.client_ip,
        failures: Number(row.failures),
      })),
      top_usernames: usernames.map((row) => ({
        username: row.username,
        attempts: Number(row.attempts),
        failures: Number(row.failures ?? 0),
      })),
      shared_certificates: certificates.map((row) => ({
        cert_fingerprint: row.cert_fingerprint,
        usernames: Number(row.usernames),
        attempts: Number(row.attempts),
      })),
    };
  }

  private decodeCursor(query: AttemptListQuery): AttemptCursor {
    try {
      return this.cursors.decode(query.cursor!, query.scope);
    } catch (error) {
      if (!(error instanceof InvalidCursorError)) {
        throw error;
      }
      throw new GatehouseError('invalid_request', {
        detail: `audit cursor refused: ${error.message}`,
        publicDetail: `query parameter 'cursor' ${error.message}`,
      });
    }
  }

  /** Fixes the bound of a new walk: the least settled instant of the writers still alive. */
  private async startWalk(filters: AttemptFilters, sort: SortDirection): Promise<Walk> {
    const [{ bound }] = (await this.dataSource.query(
      `SELECT to_char(coalesce(
                (SELECT min(settled_until) FROM audit_writers
                 WHERE heartbeat_at > now() - interval '${WRITER_FRESHNESS}'),
                now() - interval '${WRITER_FRESHNESS}') AT TIME ZONE 'UTC',
              ${PRECISE_UTC}) AS bound`,
    )) as Array<{ bound: string }>;
    return {
      filters,
      sort,
      bound,
      since: filters.since ? preciseTimestamp(filters.since) : null,
      until: filters.until ? preciseTimestamp(filters.until) : null,
    };
  }

  private range(walk: Walk): { since: string | null; until: string | null } {
    return { since: walk.since, until: walk.until };
  }

  private async fetch(
    walk: Walk,
    after: { occurredAt: string; id: string } | undefined,
    limit: number,
  ): Promise<AttemptItem[]> {
    const parameters = new StatementParameters();
    const conditions = this.conditions(walk, parameters);
    conditions.push(`occurred_at < ${parameters.add(walk.bound)}::timestamptz`);
    if (after !== undefined) {
      const occurredAt = parameters.add(after.occurredAt);
      const id = parameters.add(after.id);
      conditions.push(
        `(occurred_at, id) ${BEYOND[walk.sort]} (${occurredAt}::timestamptz, ${id}::uuid)`,
      );
    }
    const sql = `SELECT ${ITEM_COLUMNS} FROM login_attempts attempt
      WHERE ${conditions.join(' AND ')}
      ${ORDER_BY[walk.sort]} LIMIT ${parameters.add(limit)}`;
    return (await this.dataSource.query(sql, parameters.values)) as AttemptItem[];
  }

  private conditions(walk: Walk, parameters: StatementParameters): string[] {
    const { filters } = walk;
    const conditions: string[] = [];
    if (filters.username !== undefined) {
      // Names that resolved to a user are stored as written, others as their keyed hash.
      const name = parameters.add(filters.username);
      const digest = parameters.add(this.usernameDigest.of(filters.username));
      conditions.push(`(username = ${name} OR username = ${digest})`);
    }
    if (filters.ip !== undefined) {
      const ip = parameters.add(filters.ip);
      conditions.push(
        filters.ip.includes('/') ? `client_ip <<= network(${ip}::inet)` : `client_ip = ${ip}::inet`,
      );
    }
    if (filters.outcomes !== undefined) {
      conditions.push(`outcome = ANY(${parameters.add(filters.outcomes)}::text[])`);
    }
    if (filters.method !== undefined) {
      conditions.push(`method = ${parameters.add(filters.method)}`);
    }
    if (filters.fingerprint !== undefined) {
      conditions.push(`cert_fingerprint = ${parameters.add(filters.fingerprint)}`);
    }
    if (walk.since !== null) {
      conditions.push(`occurred_at >= ${parameters.add(walk.since)}::timestamptz`);
    }
    if (walk.until !== null) {
      conditions.push(`occurred_at < ${parameters.add(walk.until)}::timestamptz`);
    }
    return conditions;
  }

  private async *exportRows(walk: Walk, first: AttemptItem[]): AsyncGenerator<AttemptItem> {
    let batch = first;
    while (batch.length > 0) {
      yield* batch;
      const last = batch[batch.length - 1];
      if (batch.length < EXPORT_BATCH_SIZE) {
        return;
      }
      batch = await this.fetch(
        walk,
        { occurredAt: last.occurred_at, id: last.id },
        EXPORT_BATCH_SIZE,
      );
    }
  }
}

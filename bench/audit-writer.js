'use strict';
/**
 * Audit rows per second: the service's AuditWriter (batched unnest() inserts, the path every
 * attempt takes) against a raw loop of multi-row INSERT ... VALUES statements of the same batch
 * size, on the same database (embedded under a fresh DATA_DIR, or a fresh one at DATABASE_URL).
 */
const { randomUUID } = require('node:crypto');
const { distModule, openServiceDatabase } = require('../demo/support/service');

const BATCH = 2000;

function attemptRow(index, instanceId) {
  return {
    id: randomUUID(),
    occurredAt: new Date(),
    method: 'password',
    outcome: index % 3 === 0 ? 'unknown_user' : 'bad_password',
    count: 1,
    username: `bench-user-${index % 5000}`,
    usernameLength: 14,
    userId: null,
    // Spread over many sources, so that nothing folds: every attempt is its own row.
    clientIp: `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`,
    forwardedFor: null,
    userAgent: 'bench',
    certFingerprint: null,
    certSubject: null,
    certIssuer: null,
    certSerial: null,
    requestId: randomUUID(),
    instanceId,
    latencyMs: 12,
  };
}

async function timeWriter(database, rows) {
  const { AuditWriter } = distModule('src/audit/audit-writer.js');
  const writer = new AuditWriter((sql, parameters) => database.query(sql, parameters), {
    instanceId: 'bench-writer',
    foldRate: 1_000_000,
    flushIntervalMs: 50,
    backlogMax: rows + BATCH,
    batchSize: BATCH,
  });
  writer.start();
  const started = process.hrtime.bigint();
  for (let index = 0; index < rows; index += 1) {
    writer.record(attemptRow(index, 'bench-writer'));
    if (index % BATCH === BATCH - 1) {
      // Let the writer's timer and flushes run, as the service's event loop would.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  const lost = await writer.drain(Date.now() + 600_000);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { rows: rows - lost, seconds, lost };
}

const COLUMNS = [
  'id',
  'occurred_at',
  'method',
  'outcome',
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
];

async function timeRawInsert(database, rows) {
  const started = process.hrtime.bigint();
  for (let first = 0; first < rows; first += BATCH) {
    const size = Math.min(BATCH, rows - first);
    const parameters = [];
    const tuples = [];
    for (let offset = 0; offset < size; offset += 1) {
      const row = attemptRow(first + offset, 'bench-raw');
      const values = [
        row.id,
        row.occurredAt.toISOString(),
        row.method,
        row.outcome,
        row.count,
        row.username,
        row.usernameLength,
        row.userId,
        row.clientIp,
        row.forwardedFor,
        row.userAgent,
        row.certFingerprint,
        row.certSubject,
        row.certIssuer,
        row.certSerial,
        row.requestId,
        row.instanceId,
        row.latencyMs,
      ];
      const base = parameters.length;
      tuples.push(`(${values.map((_, index) => `$${base + index + 1}`).join(', ')})`);
      parameters.push(...values);
    }
    await database.query(
      `INSERT INTO login_attempts (${COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}`,
      parameters,
    );
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { rows, seconds };
}

/** Runs both on `env`'s database (which must have its schema) and returns the figures. */
async function benchAuditWriter(env, { rows }) {
  const database = await openServiceDatabase(env);
  try {
    // A short warm-up of both paths, so neither pays for the first plans and pages.
    await timeRawInsert(database, BATCH);
    await timeWriter(database, BATCH);
    const writer = await timeWriter(database, rows);
    const raw = await timeRawInsert(database, rows);
    const [check] = await database.query(
      `SELECT count(*)::bigint AS n FROM login_attempts WHERE instance_id = 'bench-writer'`,
    );
    const writerRate = writer.rows / writer.seconds;
    const rawRate = raw.rows / raw.seconds;
    return {
      rows,
      batch: BATCH,
      audit_writer: {
        rows_per_second: Math.round(writerRate),
        seconds: writer.seconds,
        lost: writer.lost,
      },
      raw_insert: { rows_per_second: Math.round(rawRate), seconds: raw.seconds },
      rows_written_by_writer: Number(check.n),
      ratio: Number((writerRate / rawRate).toFixed(2)),
    };
  } finally {
    await database.close();
  }
}

module.exports = { benchAuditWriter };

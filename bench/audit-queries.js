'use strict';
/**
 * The audit API over a generated login_attempts table of `rows` rows (spread over the last 20
 * hours): a filtered first page, the next page, and a summary. Timed through GET /audit/attempts
 * and GET /audit/summary when the service has them, otherwise as the equivalent SQL.
 */
const { createAgent, login, request } = require('../demo/support/client');
const { openServiceDatabase } = require('../demo/support/service');

const CHUNK = 200_000;
const REPEATS = 5;
const SPREAD_SECONDS = 20 * 3600;

/** Inserts `rows` synthetic attempts, in chunks, with the service stopped (embedded lock). */
async function generateAttempts(env, rows) {
  const database = await openServiceDatabase(env);
  const started = process.hrtime.bigint();
  try {
    for (let first = 0; first < rows; first += CHUNK) {
      const last = Math.min(rows, first + CHUNK) - 1;
      await database.query(
        `INSERT INTO login_attempts (id, occurred_at, method, outcome, count, username,
            username_length, client_ip, user_agent, request_id, instance_id, latency_ms)
         SELECT gen_random_uuid(),
                now() - make_interval(secs => (i::float8 * $3) / $4),
                'password',
                (ARRAY['bad_password','unknown_user','throttled','locked','success',
                       'no_cert','cert_unbound'])[1 + i % 7],
                1, 'user' || (i % 10000), 8,
                '10.0.0.0'::inet + (i % 65000), 'bench', 'r' || i, 'bench-gen', 20 + i % 50
           FROM generate_series($1::int, $2::int) AS i`,
        [first, last, SPREAD_SECONDS, rows],
      );
    }
  } finally {
    await database.close();
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return Number(sorted[Math.floor(sorted.length / 2)].toFixed(1));
}

async function timeRepeatedly(run) {
  const timings = [];
  let last;
  for (let repeat = 0; repeat < REPEATS; repeat += 1) {
    const started = process.hrtime.bigint();
    last = await run();
    timings.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return { median_ms: median(timings), max_ms: Number(Math.max(...timings).toFixed(1)), last };
}

/** Times the API as `admin` (certificate and password); undefined when the routes are missing. */
async function timeApi(service, pki, admin) {
  const agent = createAgent(service.url, {
    caPem: pki.ca.certificatePem,
    certificatePem: admin.certificatePem,
    privateKeyPem: admin.privateKeyPem,
  });
  try {
    const answer = await login(service.url, agent, admin.username, admin.password);
    if (answer.status !== 200) {
      return { unavailable: `admin login answered ${answer.status}` };
    }
    const headers = { authorization: `Bearer ${answer.body.access_token}` };
    const get = (path) => request(service.url, agent, { path, headers });
    const probe = await get('/audit/attempts?limit=1');
    if (probe.status !== 200) {
      return { unavailable: `GET /audit/attempts answered ${probe.status}` };
    }
    const firstPage = await timeRepeatedly(() =>
      get('/audit/attempts?outcome=bad_password&limit=100'),
    );
    const cursor = firstPage.last.body?.next_cursor;
    const nextPage = cursor
      ? await timeRepeatedly(() =>
          get(
            `/audit/attempts?outcome=bad_password&limit=100&cursor=${encodeURIComponent(cursor)}`,
          ),
        )
      : undefined;
    const byUser = await timeRepeatedly(() => get('/audit/attempts?username=user42&limit=100'));
    const summary = await timeRepeatedly(() => get('/audit/summary?window=1d'));
    const strip = (timing) =>
      timing && { median_ms: timing.median_ms, max_ms: timing.max_ms, status: timing.last.status };
    return {
      via: 'api',
      filtered_first_page: strip(firstPage),
      filtered_next_page: strip(nextPage),
      username_page: strip(byUser),
      summary_1d: strip(summary),
    };
  } finally {
    agent.destroy();
  }
}

/** The same questions as SQL, with the service stopped. */
async function timeSql(env) {
  const database = await openServiceDatabase(env);
  try {
    const page = (filter) =>
      timeRepeatedly(() =>
        database.query(
          `SELECT * FROM login_attempts WHERE ${filter} AND occurred_at <= now()
            ORDER BY occurred_at DESC, id DESC LIMIT 100`,
        ),
      );
    const firstPage = await page(`outcome = 'bad_password'`);
    const byUser = await page(`username = 'user42'`);
    const summary = await timeRepeatedly(async () => {
      await database.query(
        `SELECT outcome, sum(count) FROM login_attempts
          WHERE occurred_at > now() - interval '1 day' GROUP BY outcome`,
      );
      await database.query(
        `SELECT client_ip, sum(count) AS n FROM login_attempts
          WHERE occurred_at > now() - interval '1 day' GROUP BY client_ip ORDER BY n DESC LIMIT 10`,
      );
      return database.query(
        `SELECT username, sum(count) AS n FROM login_attempts
          WHERE occurred_at > now() - interval '1 day' GROUP BY username ORDER BY n DESC LIMIT 10`,
      );
    });
    const strip = (timing) => ({ median_ms: timing.median_ms, max_ms: timing.max_ms });
    return {
      via: 'sql',
      filtered_first_page: strip(firstPage),
      username_page: strip(byUser),
      summary_1d: strip(summary),
    };
  } finally {
    await database.close();
  }
}

module.exports = { generateAttempts, timeApi, timeSql };

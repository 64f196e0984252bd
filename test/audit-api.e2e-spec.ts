import * as fs from 'node:fs';
import { Client } from 'pg';
import { UsernameDigest } from '../src/audit/username-digest';
import { loadUsernameKey } from '../src/audit/username-key';
import { AppConfig } from '../src/config/app-config';
import { sendRaw } from './support/login-requests';
import {
  GatehouseProcess,
  createTestDatabase,
  serverDatabaseUrl,
  startGatehouse,
  temporaryDirectory,
} from './support/gatehouse';
import {
  DatabaseTarget,
  TEST_AUDIT_USERNAME_KEY,
  createUsers,
  databaseEnvironment,
  withDatabase,
} from './support/users';

const databaseMissing = serverDatabaseUrl() ? undefined : 'DATABASE_URL is unset';
if (databaseMissing) {
  process.stderr.write(`audit-api.e2e-spec: skipping the audit API tests: ${databaseMissing}\n`);
}

const ADMIN = { username: 'auditor', password: 'correct horse battery staple 1' };
const VIEWER = { username: 'viewer', password: 'correct horse battery staple 2' };
const FINGERPRINT = 'c0ffee'.repeat(10) + 'c0ff';
const OTHER_FINGERPRINT = 'f00d'.repeat(16);
const FORMULA_AGENT = "=cmd|' /C calc'!A0";
const EXPORT_ROWS = 100_000;
const MEMORY_GROWTH_LIMIT = 150 * 1024 * 1024;

interface AttemptRow {
  id: string;
  occurred_at: string;
  count: number;
  username: string | null;
  username_length: number | null;
  user_id: string | null;
  client_ip: string | null;
  user_agent: string | null;
  cert_fingerprint: string | null;
  method: string;
  outcome: string;
  instance_id: string;
}

interface AttemptPage {
  items: AttemptRow[];
  next_cursor: string | null;
  settled_until: string;
}

interface Seed {
  ageSeconds: number;
  ip: string;
  outcome?: string;
  method?: string;
  username?: string | null;
  fingerprint?: string | null;
  userAgent?: string | null;
  instance?: string;
}

(databaseMissing ? describe.skip : describe)('Audit API', () => {
  let database: { url: string; drop(): Promise<void> };
  let service: GatehouseProcess;
  let sql: Client;
  let adminToken: string;
  let viewerToken: string;
  const digest = new UsernameDigest(Buffer.from(TEST_AUDIT_USERNAME_KEY, 'utf8'));

  async function login(user: { username: string; password: string }): Promise<string> {
    const response = await sendRaw(service.url, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(user),
    });
    expect(response.status).toBe(200);
    return (JSON.parse(response.body) as { access_token: string }).access_token;
  }

  function get(path: string, token: string | null = adminToken) {
    return sendRaw(service.url, {
      method: 'GET',
      path,
      headers: token === null ? {} : { authorization: `Bearer ${token}` },
    });
  }

  async function page(query: string): Promise<AttemptPage> {
    const response = await get(`/audit/attempts?${query}`);
    expect(response.status).toBe(200);
    return JSON.parse(response.body) as AttemptPage;
  }

  /** Inserts one attempt row and returns its id. */
  async function seed(row: Seed): Promise<string> {
    const result = await sql.query<{ id: string }>(
      `INSERT INTO login_attempts (id, occurred_at, method, outcome, count, username,
         username_length, client_ip, user_agent, cert_fingerprint, instance_id)
       VALUES (gen_random_uuid(), now() - $1 * interval '1 second', $2, $3, 1, $4, $5, $6, $7,
         $8, $9)
       RETURNING id::text`,
      [
        row.ageSeconds,
        row.method ?? 'password',
        row.outcome ?? 'bad_password',
        row.username ?? null,
        row.username?.length ?? null,
        row.ip,
        row.userAgent ?? null,
        row.fingerprint ?? null,
        row.instance ?? 'test-writer-a',
      ],
    );
    return result.rows[0].id;
  }

  function ids(items: AttemptRow[]): string[] {
    return items.map((item) => item.id).sort();
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    const target: DatabaseTarget = { dataDir: temporaryDirectory(), databaseUrl: database.url };
    service = await startGatehouse({
      dataDir: target.dataDir,
      env: { MTLS_MODE: 'off', ...databaseEnvironment(target) },
    });
    await createUsers(target, [
      { ...ADMIN, roles: ['admin'] },
      { ...VIEWER, roles: [] },
    ]);
    sql = new Client({ connectionString: database.url });
    await sql.connect();
    adminToken = await login(ADMIN);
    viewerToken = await login(VIEWER);
  }, 120_000);

  afterAll(async () => {
    await sql?.end();
    await service?.stop();
    await database?.drop();
  });

  describe('access', () => {
    it.each(['/audit/attempts', '/audit/summary', '/audit/export', '/audit/attempts/x'])(
      'answers %s without a token with 401 invalid_token',
      async (path) => {
        const response = await get(path, null);

        expect(response.status).toBe(401);
        expect(response.headers['www-authenticate']).toContain('Bearer');
        expect(JSON.parse(response.body)).toMatchObject({ error: 'invalid_token' });
      },
    );

    it('answers a forged token with 401', async () => {
      expect((await get('/audit/attempts', `${adminToken.slice(0, -4)}AAAA`)).status).toBe(401);
    });

    it.each(['/audit/attempts', '/audit/summary', '/audit/export?format=csv'])(
      'answers %s for a user without the admin role with 403 forbidden',
      async (path) => {
        const response = await get(path, viewerToken);

        expect(response.status).toBe(403);
        expect(response.headers['content-type']).toContain('application/problem+json');
        expect(JSON.parse(response.body)).toMatchObject({ error: 'forbidden' });
      },
    );
  });

  describe('GET /audit/attempts filters', () => {
    const seeded: Record<string, string> = {};

    beforeAll(async () => {
      seeded.carolSuccess = await seed({
        ageSeconds: 3600,
        ip: '203.0.113.10',
        outcome: 'success',
        username: 'carol',
        userAgent: 'curl/8.5.0',
      });
      seeded.ghost = await seed({
        ageSeconds: 3500,
        ip: '203.0.113.11',
        outcome: 'unknown_user',
        username: digest.of('ghost'),
      });
      seeded.carolCertificate = await seed({
        ageSeconds: 3400,
        ip: '2001:db8::5',
        outcome: 'cert_unbound',
        method: 'certificate',
        username: 'carol',
        fingerprint: FINGERPRINT,
      });
      seeded.formula = await seed({
        ageSeconds: 7200,
        ip: '203.0.113.12',
        outcome: 'bad_password',
        userAgent: FORMULA_AGENT,
      });
    });

    it('matches a stored name whatever its written form', async () => {
      const { items } = await page('username=%20CAROL%09');

      expect(ids(items)).toEqual([seeded.carolSuccess, seeded.carolCertificate].sort());
    });

    it('matches the keyed hash of a name that resolved to no user', async () => {
      const { items } = await page('username=Ghost');

      expect(ids(items)).toEqual([seeded.ghost]);
      expect(items[0].username).toBe(digest.of('ghost'));
    });

    it('matches an exact address, a mapped address and a CIDR range', async () => {
      expect(ids((await page('ip=203.0.113.10')).items)).toEqual([seeded.carolSuccess]);
      expect(ids((await page('ip=%3A%3Affff%3A203.0.113.11')).items)).toEqual([seeded.ghost]);
      expect(ids((await page('ip=203.0.113.0%2F24')).items)).toEqual(
        [seeded.carolSuccess, seeded.ghost, seeded.formula].sort(),
      );
      expect(ids((await page('ip=2001%3Adb8%3A%3A%2F32')).items)).toEqual([
        seeded.carolCertificate,
      ]);
    });

    it('matches one outcome or a list of them', async () => {
      const range = 'ip=203.0.113.0%2F24';

      expect(ids((await page(`${range}&outcome=unknown_user`)).items)).toEqual([seeded.ghost]);
      expect(ids((await page(`${range}&outcome=unknown_user,bad_password`)).items)).toEqual(
        [seeded.ghost, seeded.formula].sort(),
      );
    });

    it('matches the method', async () => {
      expect(ids((await page('username=carol&method=certificate')).items)).toEqual([
        seeded.carolCertificate,
      ]);
      expect(ids((await page('username=carol&method=password')).items)).toEqual([
        seeded.carolSuccess,
      ]);
    });

    it.each([
      ['plain hex', FINGERPRINT.toUpperCase()],
      ['colon hex', FINGERPRINT.match(/../g)!.join(':')],
      ['base64url', Buffer.from(FINGERPRINT, 'hex').toString('base64url')],
    ])('matches a fingerprint written as %s', async (_form, written) => {
      const { items } = await page(`fingerprint=${encodeURIComponent(written)}`);

      expect(ids(items)).toEqual([seeded.carolCertificate]);
    });

    it('bounds the time range with durations and timestamps', async () => {
      const range = 'ip=203.0.113.0%2F24';
      const ninetyMinutesAgo = new Date(Date.now() - 90 * 60_000).toISOString();

      expect(ids((await page(`${range}&since=90m`)).items)).toEqual(
        [seeded.carolSuccess, seeded.ghost].sort(),
      );
      expect(ids((await page(`${range}&until=90m`)).items)).toEqual([seeded.formula]);
      expect(ids((await page(`${range}&since=${ninetyMinutesAgo}&until=1m`)).items)).toEqual(
        [seeded.carolSuccess, seeded.ghost].sort(),
      );
    });

    it('sorts newest first by default and oldest first on request', async () => {
      const newest = await page('ip=203.0.113.0%2F24');
      const oldest = await page('ip=203.0.113.0%2F24&sort=occurred_at');

      expect(newest.items.map((item) => item.id)).toEqual([
        seeded.ghost,
        seeded.carolSuccess,
        seeded.formula,
      ]);
      expect(oldest.items.map((item) => item.id)).toEqual([
        seeded.formula,
        seeded.carolSuccess,
        seeded.ghost,
      ]);
    });

    it('shows the columns in snake_case', async () => {
      const [item] = (await page('ip=203.0.113.10')).items;

      expect(item).toEqual({
        id: seeded.carolSuccess,
        occurred_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/),
        count: 1,
        username: 'carol',
        username_length: 5,
        user_id: null,
        client_ip: '203.0.113.10',
        forwarded_for: null,
        user_agent: 'curl/8.5.0',
        cert_fingerprint: null,
        cert_subject: null,
        cert_issuer: null,
        cert_serial: null,
        request_id: null,
        instance_id: 'test-writer-a',
        latency_ms: null,
        method: 'password',
        outcome: 'success',
      });
    });

    it('returns one attempt by id, 404 for an unknown id and 400 for a malformed one', async () => {
      const found = await get(`/audit/attempts/${seeded.ghost.toUpperCase()}`);
      const missing = await get('/audit/attempts/00000000-0000-4000-8000-000000000000');
      const malformed = await get(`/audit/attempts/${encodeURIComponent("1' OR '1'='1")}`);

      expect(found.status).toBe(200);
      expect(JSON.parse(found.body)).toMatchObject({ id: seeded.ghost, outcome: 'unknown_user' });
      expect(missing.status).toBe(404);
      expect(JSON.parse(missing.body)).toMatchObject({ error: 'not_found' });
      expect(malformed.status).toBe(400);
      expect(JSON.parse(malformed.body)).toMatchObject({ error: 'invalid_request' });
    });

    it('exports CSV with formula cells neutralised and quoted', async () => {
      const response = await get('/audit/export?format=csv&ip=203.0.113.12');
      const lines = response.body.trimEnd().split('\r\n');

      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toContain('text/csv');
      expect(lines).toHaveLength(2);
      expect(lines[0].replaceAll('"', '')).toBe(
        'id,occurred_at,count,username,username_length,user_id,client_ip,forwarded_for,' +
          'user_agent,cert_fingerprint,cert_subject,cert_issuer,cert_serial,request_id,' +
          'instance_id,latency_ms,method,outcome',
      );
      expect(lines[1]).toContain(`,"'=cmd|' /C calc'!A0",`);
      expect(lines[1]).not.toMatch(/(^|,)"?=/);
    });

    it('exports NDJSON with the same filters', async () => {
      const response = await get('/audit/export?format=ndjson&username=carol');
      const rows = response.body
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as AttemptRow);

      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toContain('application/x-ndjson');
      expect(ids(rows)).toEqual([seeded.carolSuccess, seeded.carolCertificate].sort());
    });
  });

  describe('GET /audit/attempts refusals', () => {
    // Written as they travel in the query string (a lone surrogate cannot be encoded by JS).
    const PAYLOADS = [
      encodeURIComponent('occurred_at; DROP TABLE login_attempts'),
      encodeURIComponent("' OR 1=1 --"),
      encodeURIComponent("x' UNION SELECT password_hash FROM users --"),
      encodeURIComponent('ａｌｉｃｅ\u202e'),
      '%00',
      '%ED%A0%80',
      encodeURIComponent('é'.repeat(1000)),
    ];
    const PARAMETERS = [
      'username',
      'ip',
      'outcome',
      'method',
      'fingerprint',
      'since',
      'until',
      'limit',
      'cursor',
      'sort',
    ];

    it('answers every injection attempt in every parameter with 400 or no rows', async () => {
      const [{ before }] = (
        await sql.query<{ before: string }>('SELECT count(*)::text AS before FROM login_attempts')
      ).rows;
      for (const parameter of PARAMETERS) {
        for (const payload of PAYLOADS) {
          const response = await get(`/audit/attempts?${parameter}=${payload}`);
          const outcome = `${parameter}=${payload.slice(0, 40)} → ${response.status}`;
          expect([outcome, [200, 400].includes(response.status)]).toEqual([outcome, true]);
          if (response.status === 200) {
            expect([outcome, (JSON.parse(response.body) as AttemptPage).items]).toEqual([
              outcome,
              [],
            ]);
          } else {
            expect(response.headers['content-type']).toContain('application/problem+json');
            expect(JSON.parse(response.body)).toMatchObject({ error: 'invalid_request' });
          }
        }
      }
      const [{ after }] = (
        await sql.query<{ after: string }>('SELECT count(*)::text AS after FROM login_attempts')
      ).rows;
      expect(BigInt(after)).toBeGreaterThanOrEqual(BigInt(before));
    });

    it.each([
      ['an unknown parameter', 'usename=carol'],
      ['a bracketed parameter', 'username[]=x'],
      ['a repeated parameter', 'username=carol&username=dave'],
      ['a sort on another column', 'sort=username'],
      ['an injected sort', `sort=${encodeURIComponent('occurred_at; DROP TABLE login_attempts')}`],
      ['a limit above 1000', 'limit=1001'],
      ['an unknown outcome', 'outcome=pwned'],
      ['a malformed address', 'ip=300.1.1.1'],
      ['a huge value', `username=${'a'.repeat(12_000)}`],
    ])('answers %s with 400 invalid_request', async (_case, query) => {
      const response = await get(`/audit/attempts?${query}`);

      expect(response.status).toBe(400);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(JSON.parse(response.body)).toMatchObject({
        status: 400,
        error: 'invalid_request',
        detail: expect.any(String),
      });
    });

    it('refuses unknown parameters on the summary, the export and a single attempt', async () => {
      expect((await get('/audit/summary?window=15m&top=100')).status).toBe(400);
      expect((await get('/audit/export?format=csv&limit=5')).status).toBe(400);
      expect((await get('/audit/export?format=xml')).status).toBe(400);
      expect((await get('/audit/summary?window=31d')).status).toBe(400);
      expect(
        (await get('/audit/attempts/00000000-0000-4000-8000-000000000000?debug=1')).status,
      ).toBe(400);
    });

    it('still has its tables after every attempt', async () => {
      const { rows } = await sql.query<{ name: string | null }>(
        `SELECT to_regclass('login_attempts')::text AS name`,
      );
      expect(rows[0].name).toBe('login_attempts');
    });
  });

  describe('GET /audit/attempts paging', () => {
    const RANGE = 'ip=198.51.100.0%2F24';
    const SETTLED_ROWS = 250;

    async function setWriter(instance: string, settledAgoSeconds: number): Promise<void> {
      await sql.query(
        `INSERT INTO audit_writers (instance_id, settled_until, heartbeat_at)
         VALUES ($1, now() - $2 * interval '1 second', now())
         ON CONFLICT (instance_id) DO UPDATE
         SET settled_until = excluded.settled_until, heartbeat_at = now()`,
        [instance, settledAgoSeconds],
      );
    }

    async function refreshHeartbeats(): Promise<void> {
      await sql.query(
        `UPDATE audit_writers SET heartbeat_at = now() WHERE instance_id LIKE 'test-writer-%'`,
      );
    }

    beforeAll(async () => {
      // Rows in groups of five sharing one instant, so ties on occurred_at are paged by id.
      await sql.query(
        `INSERT INTO login_attempts
           (id, occurred_at, method, outcome, count, client_ip, instance_id)
         SELECT gen_random_uuid(), now() - interval '5 seconds' - (n / 5) * interval '100 ms',
                'password', 'bad_password', 1, ('198.51.100.' || (n % 200 + 1))::inet,
                CASE WHEN n % 2 = 0 THEN 'test-writer-a' ELSE 'test-writer-b' END
         FROM generate_series(0, $1 - 1) AS n`,
        [SETTLED_ROWS],
      );
    });

    it('walks every settled row once, in order, while two writers keep committing', async () => {
      // Writer b lags: it has committed everything before now - 3 s, nothing promised after.
      await setWriter('test-writer-a', 0);
      await setWriter('test-writer-b', 3);
      const [{ lagging }] = (
        await sql.query<{ lagging: string }>(
          `SELECT to_char(settled_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
             AS lagging FROM audit_writers WHERE instance_id = 'test-writer-b'`,
        )
      ).rows;

      const seen: AttemptRow[] = [];
      let cursor: string | null = null;
      let bound: string | undefined;
      for (let pageNumber = 0; pageNumber < 50; pageNumber += 1) {
        const query: string = cursor === null ? '' : `&cursor=${cursor}`;
        const result = await page(`${RANGE}&limit=40${query}`);
        bound ??= result.settled_until;
        expect(result.settled_until).toBe(bound);
        seen.push(...result.items);
        // Meanwhile a writes rows now, and b commits late rows it had not promised yet.
        await seed({ ageSeconds: 0, ip: '198.51.100.201', instance: 'test-writer-a' });
        await seed({ ageSeconds: 2, ip: '198.51.100.202', instance: 'test-writer-b' });
        await refreshHeartbeats();
        cursor = result.next_cursor;
        if (cursor === null) {
          break;
        }
      }

      expect(bound).toBe(lagging);
      const expected = (
        await sql.query<{ id: string }>(
          `SELECT id::text FROM login_attempts
           WHERE client_ip <<= '198.51.100.0/24' AND occurred_at < $1::timestamptz`,
          [bound],
        )
      ).rows.map((row) => row.id);
      expect(expected).toHaveLength(SETTLED_ROWS);
      expect(new Set(seen.map((item) => item.id)).size).toBe(seen.length);
      expect(ids(seen)).toEqual([...expected].sort());
      for (let index = 1; index < seen.length; index += 1) {
        const [previous, current] = [seen[index - 1], seen[index]];
        const descending =
          previous.occurred_at > current.occurred_at ||
          (previous.occurred_at === current.occurred_at && previous.id > current.id);
        expect(descending).toBe(true);
      }
    });

    it('finds the late rows in a new walk once the writers have settled past them', async () => {
      // The service's own writer publishes once a second; let it settle past the late rows.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await setWriter('test-writer-a', 0);
      await setWriter('test-writer-b', 0);
      const { rows } = await sql.query<{ total: number }>(
        `SELECT count(*)::int AS total FROM login_attempts WHERE client_ip <<= '198.51.100.0/24'`,
      );

      const seen: string[] = [];
      let cursor: string | null = null;
      for (let pageNumber = 0; pageNumber < 10 && (pageNumber === 0 || cursor); pageNumber += 1) {
        const query: string = cursor === null ? '' : `&cursor=${cursor}`;
        const result = await page(`${RANGE}&limit=1000&sort=occurred_at${query}`);
        seen.push(...result.items.map((item) => item.id));
        cursor = result.next_cursor;
      }

      expect(new Set(seen).size).toBe(rows[0].total);
    });

    it('refuses a cursor that was edited or carried over to other filters', async () => {
      const first = await page(`${RANGE}&limit=5`);
      const cursor = first.next_cursor!;
      const body = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as Record<
        string,
        unknown
      >;
      body.occurred_at = '2000-01-01T00:00:00.000000Z';
      const edited = Buffer.from(JSON.stringify(body)).toString('base64url');

      expect((await get(`/audit/attempts?${RANGE}&limit=5&cursor=${cursor}`)).status).toBe(200);
      expect((await get(`/audit/attempts?${RANGE}&limit=5&cursor=${edited}`)).status).toBe(400);
      expect((await get(`/audit/attempts?ip=198.51.100.7&cursor=${cursor}`)).status).toBe(400);
      expect((await get(`/audit/attempts?${RANGE}&cursor=${cursor.slice(0, -3)}`)).status).toBe(
        400,
      );
    });
  });

  describe('GET /audit/summary', () => {
    beforeAll(async () => {
      for (let index = 0; index < 12; index += 1) {
        await seed({ ageSeconds: 30, ip: '192.0.2.200', username: 'frank' });
      }
      await seed({
        ageSeconds: 30,
        ip: '192.0.2.201',
        username: 'dave',
        fingerprint: OTHER_FINGERPRINT,
      });
      await seed({
        ageSeconds: 30,
        ip: '192.0.2.201',
        username: 'erin',
        fingerprint: OTHER_FINGERPRINT,
      });
      await seed({ ageSeconds: 3 * 3600, ip: '192.0.2.202', username: 'old' });
    });

    it('counts outcomes, failing sources, targeted names and shared certificates', async () => {
      const response = await get('/audit/summary?window=15m');
      const summary = JSON.parse(response.body) as {
        window: string;
        outcomes: Record<string, number>;
        top_source_ips: Array<{ client_ip: string; failures: number }>;
        top_usernames: Array<{ username: string; failures: number }>;
        shared_certificates: Array<{ cert_fingerprint: string; usernames: number }>;
      };

      expect(response.status).toBe(200);
      expect(summary.window).toBe('15m');
      expect(summary.outcomes.bad_password).toBeGreaterThanOrEqual(14);
      expect(summary.top_source_ips).toContainEqual({ client_ip: '192.0.2.200', failures: 12 });
      expect(summary.top_usernames).toContainEqual(
        expect.objectContaining({ username: 'frank', failures: 12 }),
      );
      expect(summary.top_usernames.map((entry) => entry.username)).not.toContain('old');
      expect(summary.shared_certificates).toContainEqual(
        expect.objectContaining({ cert_fingerprint: OTHER_FINGERPRINT, usernames: 2 }),
      );
    });

    it('includes older rows in a wider window only', async () => {
      const narrow = JSON.parse((await get('/audit/summary?window=1h')).body) as {
        top_usernames: Array<{ username: string }>;
      };
      const wide = JSON.parse((await get('/audit/summary?window=4h')).body) as {
        top_usernames: Array<{ username: string }>;
      };

      expect(narrow.top_usernames.map((entry) => entry.username)).not.toContain('old');
      expect(wide.top_usernames.map((entry) => entry.username)).toContain('old');
      expect(wide.top_usernames.length).toBeLessThanOrEqual(10);
    });
  });

  describe('GET /audit/export of a large range', () => {
    beforeAll(async () => {
      await sql.query(
        `INSERT INTO login_attempts (id, occurred_at, method, outcome, count, username,
           username_length, client_ip, user_agent, instance_id)
         SELECT gen_random_uuid(), now() - interval '1 day' + n * interval '1 ms', 'password',
                'bad_password', 1, 'bulk-' || (n % 1000), 8, ('100.64.' || (n % 250) || '.1')::inet,
                'Mozilla/5.0 (X11; Linux x86_64) bulk export row ' || n, 'test-writer-a'
         FROM generate_series(1, $1) AS n`,
        [EXPORT_ROWS],
      );
      // What autovacuum would do soon after a bulk load; without statistics the planner may
      // sort the whole filtered range for every keyset batch.
      await sql.query('ANALYZE login_attempts');
    }, 120_000);

    async function residentBytes(): Promise<number> {
      const text = await (await fetch(`${service.managementUrl}/metrics`)).text();
      const match =
        /^gatehouse_process_(?:process_)?resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(
          text,
        );
      expect(match).not.toBeNull();
      return Number(match![1]);
    }

    /** Reads the export as it streams, counting lines and sampling the service's memory. */
    async function streamExport(format: string) {
      const before = await residentBytes();
      let peak = before;
      const sampler = setInterval(() => {
        void residentBytes().then((bytes) => (peak = Math.max(peak, bytes)));
      }, 100);
      try {
        const response = await fetch(
          `${service.url}/audit/export?format=${format}&ip=100.64.0.0%2F16`,
          { headers: { authorization: `Bearer ${adminToken}` } },
        );
        expect(response.status).toBe(200);
        let lines = 0;
        let firstLine = '';
        const decoder = new TextDecoder();
        for await (const chunk of response.body!) {
          const text = decoder.decode(chunk as Uint8Array, { stream: true });
          if (lines === 0) {
            firstLine += text.split('\n')[0];
          }
          lines += text.split('\n').length - 1;
        }
        return { lines, firstLine, growth: Math.max(peak, await residentBytes()) - before };
      } finally {
        clearInterval(sampler);
      }
    }

    it('streams 100k rows as NDJSON without holding them in memory', async () => {
      const { lines, firstLine, growth } = await streamExport('ndjson');

      expect(lines).toBe(EXPORT_ROWS);
      expect(JSON.parse(firstLine)).toMatchObject({ outcome: 'bad_password' });
      expect(growth).toBeLessThan(MEMORY_GROWTH_LIMIT);
    }, 120_000);

    it('streams 100k rows as CSV with one header line', async () => {
      const { lines, firstLine, growth } = await streamExport('csv');

      expect(lines).toBe(EXPORT_ROWS + 1);
      expect(firstLine).toMatch(/^"id","occurred_at","count",/);
      expect(growth).toBeLessThan(MEMORY_GROWTH_LIMIT);
    }, 120_000);
  });

  describe('admin_actions', () => {
    it('records every call with the actor, its filters, address and request id', async () => {
      const marker = await get('/audit/attempts?username=Zed&outcome=locked');
      const refused = await get('/audit/attempts?bogus=1');
      expect([marker.status, refused.status]).toEqual([200, 400]);
      const { rows } = await sql.query<{
        actor: string;
        actor_user_id: string;
        action: string;
        detail: Record<string, unknown>;
        client_ip: string;
        request_id: string;
      }>(
        `SELECT a.actor, a.actor_user_id::text, a.action, a.detail, host(a.client_ip) AS client_ip,
                a.request_id
         FROM admin_actions a ORDER BY a.occurred_at`,
      );
      const [{ id: adminId }] = (
        await sql.query<{ id: string }>(
          `SELECT id::text FROM users WHERE normalized_username = 'auditor'`,
        )
      ).rows;

      const actions = new Set(rows.map((row) => row.action));
      expect(actions).toEqual(
        new Set(['audit.attempts', 'audit.attempt', 'audit.summary', 'audit.export']),
      );
      expect(rows.every((row) => row.actor === 'auditor' && row.actor_user_id === adminId)).toBe(
        true,
      );
      expect(rows.every((row) => row.client_ip === '127.0.0.1')).toBe(true);
      expect(rows.every((row) => /^[0-9a-f-]{36}$/.test(row.request_id))).toBe(true);
      const filtered = rows.filter((row) => row.action === 'audit.attempts').at(-2);
      expect(filtered?.detail).toMatchObject({
        filters: { username: 'zed', outcomes: ['locked'] },
      });
      const refusal = rows.find((row) => row.request_id === refused.headers['x-request-id']);
      expect(refusal?.detail).toMatchObject({ refused: expect.stringContaining('bogus') });
    });

    it('records nothing for callers the admin guard refused', async () => {
      const { rows } = await sql.query<{ actors: string[] }>(
        `SELECT array_agg(DISTINCT actor) AS actors FROM admin_actions`,
      );

      expect(rows[0].actors).toEqual(['auditor']);
    });
  });
});

/**
 * The same API on the embedded database, which the service child holds while it runs: rows are
 * written before it starts and admin_actions read after it stopped, so the cases that insert
 * while paging run on Postgres only (above).
 */
describe('Audit API on the embedded database', () => {
  const target: DatabaseTarget = { dataDir: temporaryDirectory() };
  const BULK_ROWS = 3000;
  let service: GatehouseProcess | undefined;
  let adminToken: string;
  let digest: UsernameDigest;

  function get(path: string, token: string | null = adminToken) {
    return sendRaw(service!.url, {
      method: 'GET',
      path,
      headers: token === null ? {} : { authorization: `Bearer ${token}` },
    });
  }

  async function login(user: { username: string; password: string }): Promise<string> {
    const response = await sendRaw(service!.url, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(user),
    });
    expect(response.status).toBe(200);
    return (JSON.parse(response.body) as { access_token: string }).access_token;
  }

  beforeAll(async () => {
    // The key the service will find under DATA_DIR, created here first so the spec can hash.
    digest = new UsernameDigest(loadUsernameKey({ dataDir: target.dataDir } as AppConfig));
    await createUsers(target, [
      { ...ADMIN, roles: ['admin'] },
      { ...VIEWER, roles: [] },
    ]);
    await withDatabase(target, async ({ dataSource }) => {
      await dataSource.query(
        `INSERT INTO login_attempts (id, occurred_at, method, outcome, count, username,
           client_ip, user_agent, instance_id)
         VALUES
           (gen_random_uuid(), now() - interval '1 hour', 'password', 'success', 1, 'carol',
            '203.0.113.10', 'curl/8.5.0', 'seed'),
           (gen_random_uuid(), now() - interval '50 minutes', 'password', 'unknown_user', 1, $1,
            '203.0.113.11', $2, 'seed')`,
        [digest.of('ghost'), FORMULA_AGENT],
      );
      await dataSource.query(
        `INSERT INTO login_attempts (id, occurred_at, method, outcome, count, client_ip,
           instance_id)
         SELECT gen_random_uuid(), now() - interval '2 hours' + (n / 3) * interval '1 ms',
                'password', 'throttled', 1, '198.51.100.7', 'seed'
         FROM generate_series(1, $1) AS n`,
        [BULK_ROWS],
      );
    });
    service = await startGatehouse({ dataDir: target.dataDir, env: { MTLS_MODE: 'off' } });
    adminToken = await login(ADMIN);
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    fs.rmSync(target.dataDir, { recursive: true, force: true });
  });

  it('refuses callers without the admin role and unknown parameters', async () => {
    const viewerToken = await login(VIEWER);

    expect((await get('/audit/attempts', null)).status).toBe(401);
    expect((await get('/audit/attempts', viewerToken)).status).toBe(403);
    expect((await get('/audit/attempts?usename=carol')).status).toBe(400);
  });

  it('filters by stored names, keyed hashes, ranges and outcomes', async () => {
    const byName = JSON.parse((await get('/audit/attempts?username=CAROL')).body) as AttemptPage;
    const byHash = JSON.parse((await get('/audit/attempts?username=ghost')).body) as AttemptPage;
    const byRange = JSON.parse(
      (await get('/audit/attempts?ip=203.0.113.0%2F24&outcome=unknown_user')).body,
    ) as AttemptPage;

    expect(byName.items.map((item) => item.client_ip)).toEqual(['203.0.113.10']);
    expect(byHash.items.map((item) => item.client_ip)).toEqual(['203.0.113.11']);
    expect(byRange.items.map((item) => item.username)).toEqual([digest.of('ghost')]);
  });

  it('pages through rows sharing instants without duplicates or gaps', async () => {
    const seen = new Set<string>();
    let cursor: string | null = null;
    for (let pageNumber = 0; pageNumber < 20 && (pageNumber === 0 || cursor); pageNumber += 1) {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const response = await get(`/audit/attempts?ip=198.51.100.7&limit=700${query}`);
      const result = JSON.parse(response.body) as AttemptPage;
      result.items.forEach((item) => seen.add(item.id));
      cursor = result.next_cursor;
    }

    expect(seen.size).toBe(BULK_ROWS);
  });

  it('exports CSV and NDJSON with formula cells neutralised', async () => {
    const csv = await get('/audit/export?format=csv&ip=203.0.113.0%2F24');
    const ndjson = await get('/audit/export?ip=198.51.100.7');

    expect(csv.body.trimEnd().split('\r\n')).toHaveLength(3);
    expect(csv.body).toContain(`"'${FORMULA_AGENT}"`);
    expect(ndjson.body.trimEnd().split('\n')).toHaveLength(BULK_ROWS);
  });

  it('has recorded each call in admin_actions', async () => {
    await service!.stop();
    service = undefined;
    const actions = await withDatabase(target, async ({ dataSource }) =>
      (
        (await dataSource.query(
          `SELECT action, actor FROM admin_actions ORDER BY occurred_at`,
        )) as Array<{ action: string; actor: string }>
      ).map((row) => `${row.actor}:${row.action}`),
    );

    expect(actions.length).toBeGreaterThanOrEqual(8);
    expect(new Set(actions)).toEqual(new Set(['auditor:audit.attempts', 'auditor:audit.export']));
  });
});

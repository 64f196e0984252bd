import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { PartitionMaintenanceService } from '../src/audit/partition-maintenance.service';
import { AppConfig } from '../src/config/app-config';
import { loadConfig } from '../src/config/config.loader';
import { DatabaseConnection, openDatabase } from '../src/database/data-source.factory';
import { runMigrations } from '../src/database/migrator';
import {
  DETECTION_LOCK_KEY,
  DetectionEvaluatorService,
} from '../src/detection/detection-evaluator.service';
import { FailedPasswordTagger } from '../src/detection/failed-password-tagger';
import { FINDING_RAISED_EVENT, Finding } from '../src/detection/finding';
import { PasswordSprayTracker } from '../src/detection/password-spray-tracker';
import { MetricsService } from '../src/health/metrics.service';
import {
  GatehouseProcess,
  createTestDatabase,
  serverDatabaseUrl,
  startGatehouse,
  temporaryDirectory,
} from './support/gatehouse';
import { sendRaw } from './support/login-requests';

const SERVER_URL = serverDatabaseUrl();
const describeOnServer = SERVER_URL ? describe : describe.skip;
if (!SERVER_URL) {
  process.stderr.write(
    'detection.e2e-spec: server suites skipped, DATABASE_URL is not set (advisory-lock ' +
      'leadership, concurrent partition detach and two evaluators need a Postgres server)\n',
  );
}

const USERNAME_KEY = 'detection-spec-username-key-0123456789';
const ROOT = path.resolve(__dirname, '..');

interface ScriptedAttempt {
  outcome: string;
  username: string | null;
  ip: string;
  fingerprint?: string;
  method?: 'password' | 'certificate';
  secondsAgo?: number;
}

function configFor(url: string, extra: Record<string, string> = {}): AppConfig {
  return loadConfig({
    DATABASE_URL: url,
    AUDIT_USERNAME_KEY: USERNAME_KEY,
    LIMITER_STORE: 'memory',
    MTLS_MODE: 'off',
    ...extra,
  });
}

async function insertAttempts(dataSource: DataSource, attempts: ScriptedAttempt[]): Promise<void> {
  await dataSource.query(
    `INSERT INTO login_attempts
       (id, occurred_at, method, outcome, count, username, client_ip, cert_fingerprint, instance_id)
     SELECT gen_random_uuid(), now() - make_interval(secs => seconds), method, outcome, 1,
            username, ip::inet, fingerprint, 'detection-spec'
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[])
         AS scripted(method, outcome, username, ip, fingerprint, seconds)`,
    [
      attempts.map((attempt) => attempt.method ?? 'password'),
      attempts.map((attempt) => attempt.outcome),
      attempts.map((attempt) => attempt.username),
      attempts.map((attempt) => attempt.ip),
      attempts.map((attempt) => attempt.fingerprint ?? null),
      attempts.map((attempt) => attempt.secondsAgo ?? 30),
    ],
  );
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index);
}

function fingerprint(character: string): string {
  return character.repeat(64);
}

class RecordingBlocker {
  readonly blocks: Array<{ subject: string; durationMs: number }> = [];
  readonly suspended: string[] = [];

  block(subject: string, durationMs: number): Promise<void> {
    this.blocks.push({ subject, durationMs });
    return Promise.resolve();
  }

  suspend(fingerprint: string): Promise<void> {
    this.suspended.push(fingerprint);
    return Promise.resolve();
  }
}

interface Evaluator {
  service: DetectionEvaluatorService;
  blocker: RecordingBlocker;
  tracker: PasswordSprayTracker;
  metrics: MetricsService;
  raised: Finding[];
}

function evaluatorOn(dataSource: DataSource, config: AppConfig): Evaluator {
  const blocker = new RecordingBlocker();
  const events = new EventEmitter2();
  const metrics = new MetricsService();
  const tracker = new PasswordSprayTracker(config);
  const raised: Finding[] = [];
  events.on(FINDING_RAISED_EVENT, (finding: Finding) => raised.push(finding));
  const service = new DetectionEvaluatorService(
    config,
    dataSource,
    blocker as never,
    events,
    metrics,
    tracker,
    blocker as never,
  );
  return { service, blocker, tracker, metrics, raised };
}

async function findingsFor(dataSource: DataSource, rule: string, subject: string) {
  return (await dataSource.query(
    'SELECT id, rule, subject, mode, evidence, status FROM findings WHERE rule = $1 AND ' +
      'subject = $2',
    [rule, subject],
  )) as Array<{ id: string; mode: string; evidence: Record<string, number>; status: string }>;
}

async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) {
      return value;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function detectionLockHolders(url: string): Promise<number[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<{ pid: number }>(
      `SELECT pid FROM pg_locks
        WHERE locktype = 'advisory' AND objid = $1 AND granted
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [DETECTION_LOCK_KEY],
    );
    return result.rows.map((row) => row.pid);
  } finally {
    await client.end();
  }
}

describeOnServer('DetectionEvaluatorService', () => {
  let database: { url: string; drop(): Promise<void> };
  let connection: DatabaseConnection;
  let config: AppConfig;
  let evaluator: Evaluator;

  beforeAll(async () => {
    Logger.overrideLogger(['error']);
    database = await createTestDatabase();
    config = configFor(database.url, { DETECT_PASSWORD_SPRAYING: 'monitor' });
    connection = await openDatabase(config);
    await runMigrations(connection.dataSource, false);
    evaluator = evaluatorOn(connection.dataSource, config);
  });

  afterAll(async () => {
    await evaluator?.service.onApplicationShutdown();
    await connection?.close();
    await database?.drop();
  });

  it('raises credential stuffing for one address trying many names, and blocks it', async () => {
    await insertAttempts(
      connection.dataSource,
      range(25).map((index) => ({
        outcome: index % 2 ? 'unknown_user' : 'bad_password',
        username: `stuffed-${index}`,
        ip: '198.51.100.7',
      })),
    );
    await evaluator.service.evaluateNow();

    const findings = await findingsFor(
      connection.dataSource,
      'credential_stuffing',
      '198.51.100.7',
    );
    expect(findings).toHaveLength(1);
    expect(findings[0].mode).toBe('enforce');
    expect(findings[0].evidence).toMatchObject({ usernames: 25, failures: 25, successes: 0 });
    expect(evaluator.blocker.blocks).toContainEqual({
      subject: '198.51.100.7',
      durationMs: config.detectionBlockMs,
    });
    expect(evaluator.raised.map((finding) => finding.subject)).toContain('198.51.100.7');
    const metrics = await evaluator.metrics.registry.getSingleMetricAsString(
      'gatehouse_findings_total',
    );
    expect(metrics).toMatch(/rule="credential_stuffing",mode="enforce"} [1-9]/);
  });

  it('groups native IPv6 sources by their /64 and blocks the prefix', async () => {
    await insertAttempts(
      connection.dataSource,
      range(24).map((index) => ({
        outcome: 'unknown_user',
        username: `v6-${index}`,
        ip: `2001:db8:7:9::${(index % 6) + 1}`,
      })),
    );
    await evaluator.service.evaluateNow();

    const findings = await findingsFor(
      connection.dataSource,
      'credential_stuffing',
      '2001:db8:7:9::/64',
    );
    expect(findings).toHaveLength(1);
    expect(evaluator.blocker.blocks.map((block) => block.subject)).toContain('2001:db8:7:9::/64');
  });

  it('stays quiet on many users behind one NAT address logging in successfully', async () => {
    const nat = '203.0.113.9';
    await insertAttempts(connection.dataSource, [
      ...range(300).map((index) => ({
        outcome: 'success',
        username: `employee-${index % 150}`,
        ip: nat,
      })),
      ...range(12).map((index) => ({
        outcome: 'bad_password',
        username: `employee-${index * 3}`,
        ip: nat,
      })),
      // One user logging in from many places, and one typo before a success.
      ...range(30).map((index) => ({
        outcome: 'success',
        username: 'roaming-carol',
        ip: `192.0.2.${index + 1}`,
      })),
      { outcome: 'bad_password', username: 'typo-dave', ip: '192.0.2.99', secondsAgo: 40 },
      { outcome: 'success', username: 'typo-dave', ip: '192.0.2.99', secondsAgo: 35 },
    ]);
    await evaluator.service.evaluateNow();

    const subjects = (
      (await connection.dataSource.query('SELECT subject FROM findings')) as Array<{
        subject: string;
      }>
    ).map((row) => row.subject);
    expect(subjects).not.toContain(nat);
    expect(subjects).not.toContain('roaming-carol');
    expect(subjects).not.toContain('typo-dave');
    expect(evaluator.blocker.blocks.map((block) => block.subject)).not.toContain(nat);
  });

  it('raises distributed brute force for one username failing from many sources', async () => {
    await insertAttempts(
      connection.dataSource,
      range(24).map((index) => ({
        outcome: index > 20 ? 'locked' : 'bad_password',
        username: 'targeted-erin',
        ip: `100.64.${index}.1`,
      })),
    );
    await evaluator.service.evaluateNow();

    const findings = await findingsFor(
      connection.dataSource,
      'distributed_brute_force',
      'targeted-erin',
    );
    expect(findings).toHaveLength(1);
    expect(findings[0].evidence).toMatchObject({ sources: 24, failures: 24 });
    expect(evaluator.blocker.blocks.map((block) => block.subject)).not.toContain('targeted-erin');
  });

  it('raises a shared certificate seen with several usernames', async () => {
    await insertAttempts(
      connection.dataSource,
      ['frank', 'grace', 'heidi'].map((username) => ({
        outcome: 'cert_mismatch',
        username,
        ip: '192.0.2.200',
        fingerprint: fingerprint('a'),
      })),
    );
    await insertAttempts(
      connection.dataSource,
      range(20).map(() => ({
        outcome: 'success',
        username: 'ivan',
        ip: '192.0.2.201',
        fingerprint: fingerprint('c'),
      })),
    );
    await evaluator.service.evaluateNow();

    expect(
      await findingsFor(connection.dataSource, 'shared_certificate', fingerprint('a')),
    ).toHaveLength(1);
    expect(
      await findingsFor(connection.dataSource, 'shared_certificate', fingerprint('c')),
    ).toHaveLength(0);
  });

  it('raises a success that follows many failures on the account', async () => {
    await insertAttempts(connection.dataSource, [
      ...range(6).map((index) => ({
        outcome: 'bad_password',
        username: 'judy',
        ip: `100.70.0.${index + 1}`,
        secondsAgo: 60 - index,
      })),
      { outcome: 'success', username: 'judy', ip: '100.70.0.50', secondsAgo: 20 },
    ]);
    await evaluator.service.evaluateNow();

    const findings = await findingsFor(connection.dataSource, 'success_after_failures', 'judy');
    expect(findings).toHaveLength(1);
    expect(findings[0].evidence).toMatchObject({ failures: 6 });
  });

  it('raises lockouts of logins presenting one certificate', async () => {
    await insertAttempts(
      connection.dataSource,
      range(3).map(() => ({
        outcome: 'locked',
        username: 'mallory-target',
        ip: '192.0.2.210',
        fingerprint: fingerprint('b'),
      })),
    );
    await evaluator.service.evaluateNow();

    expect(
      await findingsFor(connection.dataSource, 'certificate_lockouts', fingerprint('b')),
    ).toHaveLength(1);
    expect(evaluator.blocker.suspended).toEqual([]);
  });

  it('raises password spraying from one keyed-hash password tried on many accounts', async () => {
    const tagger = new FailedPasswordTagger(config);
    const now = new Date();
    for (const index of range(12)) {
      evaluator.tracker.record({
        occurredAt: now,
        username: `sprayed-${index}`,
        clientIp: '192.0.2.77',
        tag: tagger.tag('Winter2026!')!,
      });
      evaluator.tracker.record({
        occurredAt: now,
        username: `honest-${index}`,
        clientIp: '192.0.2.78',
        tag: tagger.tag(`typo-${index}-of-a-long-password`)!,
      });
    }
    await evaluator.service.evaluateNow();

    const findings = await findingsFor(connection.dataSource, 'password_spraying', '192.0.2.77');
    expect(findings).toHaveLength(1);
    expect(findings[0].mode).toBe('monitor');
    expect(findings[0].evidence).toMatchObject({ usernames: 12 });
    expect(await findingsFor(connection.dataSource, 'password_spraying', '192.0.2.78')).toEqual([]);
    expect(evaluator.blocker.blocks.map((block) => block.subject)).not.toContain('192.0.2.77');
  });

  it('keeps one finding per incident across repeated evaluations', async () => {
    const before = (await connection.dataSource.query(
      'SELECT count(*)::int AS count FROM findings',
    )) as Array<{ count: number }>;
    const created = await evaluator.service.evaluateNow();
    await evaluator.service.evaluateNow();

    const after = (await connection.dataSource.query(
      'SELECT count(*)::int AS count FROM findings',
    )) as Array<{ count: number }>;
    expect(created).toEqual([]);
    expect(after[0].count).toBe(before[0].count);
  });

  it('never stores a password tag or a password in findings', async () => {
    const rows = (await connection.dataSource.query(
      `SELECT evidence::text AS evidence FROM findings WHERE rule = 'password_spraying'`,
    )) as Array<{ evidence: string }>;
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.evidence).not.toMatch(/Winter2026|tag/);
    }
  });
});

describeOnServer('Detection leadership', () => {
  let database: { url: string; drop(): Promise<void> };
  let connections: DatabaseConnection[] = [];
  let evaluators: Evaluator[] = [];
  let config: AppConfig;

  beforeAll(async () => {
    Logger.overrideLogger(['error']);
    database = await createTestDatabase();
    config = configFor(database.url);
    connections = [await openDatabase(config), await openDatabase(config)];
    await runMigrations(connections[0].dataSource, false);
    evaluators = connections.map((connection) => evaluatorOn(connection.dataSource, config));
  });

  afterAll(async () => {
    for (const evaluator of evaluators) {
      await evaluator.service.onApplicationShutdown();
    }
    for (const connection of connections) {
      await connection.close().catch(() => undefined);
    }
    await database?.drop();
  });

  it('elects exactly one leader and records one finding per incident', async () => {
    await insertAttempts(
      connections[0].dataSource,
      range(30).map((index) => ({
        outcome: 'unknown_user',
        username: `pair-${index}`,
        ip: '198.51.100.77',
      })),
    );
    await Promise.all(evaluators.map((evaluator) => evaluator.service.evaluateNow()));
    await Promise.all(evaluators.map((evaluator) => evaluator.service.evaluateNow()));

    const leaders = evaluators.filter((evaluator) => evaluator.service.isLeader);
    expect(leaders).toHaveLength(1);
    expect(await detectionLockHolders(database.url)).toHaveLength(1);
    expect(
      await findingsFor(connections[1].dataSource, 'credential_stuffing', '198.51.100.77'),
    ).toHaveLength(1);
    const raised = evaluators.flatMap((evaluator) => evaluator.raised);
    expect(raised.filter((finding) => finding.subject === '198.51.100.77')).toHaveLength(1);
    const gauges = await Promise.all(
      evaluators.map((evaluator) =>
        evaluator.metrics.registry.getSingleMetricAsString('gatehouse_detection_leader'),
      ),
    );
    expect(gauges.filter((text) => /^gatehouse_detection_leader 1$/m.test(text))).toHaveLength(1);
  });

  it('hands leadership over when the leader session ends', async () => {
    const leader = evaluators.find((evaluator) => evaluator.service.isLeader)!;
    const follower = evaluators.find((evaluator) => !evaluator.service.isLeader)!;
    const [holder] = await detectionLockHolders(database.url);
    const admin = new Client({ connectionString: database.url });
    await admin.connect();
    await admin.query('SELECT pg_terminate_backend($1)', [holder]);
    await admin.end();
    await waitFor(
      async () => ((await detectionLockHolders(database.url)).length === 0 ? true : undefined),
      'the lock to be freed',
    );

    await follower.service.evaluateNow();
    await leader.service.evaluateNow();

    expect(follower.service.isLeader).toBe(true);
    expect(leader.service.isLeader).toBe(false);
    expect(await detectionLockHolders(database.url)).toHaveLength(1);
  });
});

describeOnServer('PartitionMaintenanceService', () => {
  let database: { url: string; drop(): Promise<void> };
  let connection: DatabaseConnection;
  let service: PartitionMaintenanceService;

  beforeAll(async () => {
    Logger.overrideLogger(['error']);
    database = await createTestDatabase();
    const config = configFor(database.url, { AUDIT_RETENTION_DAYS: '30' });
    connection = await openDatabase(config);
    await runMigrations(connection.dataSource, false);
    service = new PartitionMaintenanceService(config, connection.dataSource);
  });

  afterAll(async () => {
    await service?.onApplicationShutdown();
    await connection?.close();
    await database?.drop();
  });

  function dayName(offsetDays: number): string {
    const day = new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
    return `login_attempts_${day.replace(/-/g, '')}`;
  }

  async function exists(name: string): Promise<boolean> {
    const rows = (await connection.dataSource.query('SELECT to_regclass($1) IS NOT NULL AS found', [
      name,
    ])) as Array<{ found: boolean }>;
    return rows[0].found;
  }

  it('keeps daily partitions ready for the coming days', async () => {
    const laterNow = Date.now() + 10 * 86_400_000;
    expect(await exists(dayName(20))).toBe(false);

    expect(await service.maintain(laterNow)).toBe(true);

    for (const offset of [0, 1, 7, 14, 20, 22]) {
      expect(await exists(dayName(offset))).toBe(true);
    }
  });

  it('drops a partition older than the retention while inserts continue', async () => {
    const old = dayName(-45);
    await connection.dataSource.query(
      `SELECT ensure_login_attempt_partitions((now() AT TIME ZONE 'UTC')::date - 45, 1)`,
    );
    await insertAttempts(connection.dataSource, [
      { outcome: 'success', username: 'old', ip: '192.0.2.1', secondsAgo: 45 * 86_400 },
    ]);
    expect(await exists(old)).toBe(true);

    let inserted = 0;
    let failed = 0;
    let writing = true;
    const writer = (async () => {
      for (let round = 0; round < 2000 && writing; round += 1) {
        try {
          await insertAttempts(connection.dataSource, [
            { outcome: 'success', username: `live-${round}`, ip: '192.0.2.2', secondsAgo: 0 },
          ]);
          inserted += 1;
        } catch {
          failed += 1;
        }
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const ran = await service.maintain();
    await new Promise((resolve) => setTimeout(resolve, 100));
    writing = false;
    await writer;

    expect(ran).toBe(true);
    expect(await exists(old)).toBe(false);
    expect(failed).toBe(0);
    expect(inserted).toBeGreaterThan(0);
    const live = (await connection.dataSource.query(
      `SELECT count(*)::int AS count FROM login_attempts WHERE username LIKE 'live-%'`,
    )) as Array<{ count: number }>;
    expect(live[0].count).toBe(inserted);
    expect(await exists(dayName(-1))).toBe(true);
  });

  it('lets one replica run a round at a time', async () => {
    const holder = new Client({ connectionString: database.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [0x6770_7274]);
      expect(await service.maintain()).toBe(false);
    } finally {
      await holder.end();
    }
    expect(await service.maintain()).toBe(true);
  });
});

describeOnServer('Detection in the running service', () => {
  let database: { url: string; drop(): Promise<void> };
  let gatehouse: GatehouseProcess;
  let client: Client;

  const env = () => ({
    DATABASE_URL: database.url,
    AUDIT_USERNAME_KEY: USERNAME_KEY,
    LIMITER_STORE: 'memory',
    MTLS_MODE: 'off',
    DETECT_INTERVAL: '1s',
    DETECT_PASSWORD_SPRAYING: 'monitor',
    DETECT_SPRAYING_MIN_USERNAMES: '5',
  });

  beforeAll(async () => {
    database = await createTestDatabase();
    gatehouse = await startGatehouse({ env: env() });
    client = new Client({ connectionString: database.url });
    await client.connect();
    const added = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'bin', 'gatehouse.js'),
        'users',
        'add',
        'root',
        '--admin',
        '--password-stdin',
      ],
      { input: 'root-password-for-alerts\n', env: { ...gatehouse.env, ...env() }, cwd: ROOT },
    );
    if (added.status !== 0) {
      throw new Error(`users add failed: ${added.stderr.toString()}`);
    }
  }, 90_000);

  afterAll(async () => {
    await client?.end();
    await gatehouse?.stop();
    await database?.drop();
  });

  function login(username: string, password: string, localAddress?: string) {
    return sendRaw(gatehouse.url, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
      localAddress,
    });
  }

  async function findingRow(rule: string, subject: string) {
    const result = await client.query<{ id: string }>(
      'SELECT id FROM findings WHERE rule = $1 AND subject = $2',
      [rule, subject],
    );
    return result.rows[0];
  }

  it('raises password spraying from wrong passwords seen by the login path', async () => {
    for (const index of range(6)) {
      const answer = await login(`nobody-${index}`, 'Spring2026!', '127.0.0.7');
      expect(answer.status).toBe(401);
    }
    await waitFor(() => findingRow('password_spraying', '127.0.0.7'), 'a spraying finding');
    const stored = await client.query<{ text: string }>(
      `SELECT row_to_json(a)::text AS text FROM login_attempts a WHERE client_ip = '127.0.0.7'`,
    );
    expect(stored.rows).toHaveLength(6);
    expect(stored.rows.map((row) => row.text).join('\n')).not.toContain('Spring2026');
  });

  it('blocks an enforced stuffing source: next login 429, audited as blocked', async () => {
    await client.query(
      `INSERT INTO login_attempts
         (id, occurred_at, method, outcome, username, client_ip, instance_id)
       SELECT gen_random_uuid(), now() - interval '20 seconds', 'password', 'unknown_user',
              'stuffing-' || n, '127.0.0.9', 'detection-spec'
         FROM generate_series(1, 25) AS n`,
    );
    await waitFor(() => findingRow('credential_stuffing', '127.0.0.9'), 'a stuffing finding');

    const answer = await login('someone', 'whatever-password', '127.0.0.9');
    expect(answer.status).toBe(429);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'too_many_attempts' });
    const elsewhere = await login('someone', 'whatever-password', '127.0.0.10');
    expect(elsewhere.status).toBe(401);
    await waitFor(async () => {
      const rows = await client.query(
        `SELECT 1 FROM login_attempts WHERE client_ip = '127.0.0.9' AND outcome = 'blocked'`,
      );
      return rows.rowCount === 1 ? true : undefined;
    }, 'the blocked attempt in the audit');
    const metrics = await fetch(`${gatehouse.managementUrl}/metrics`).then((response) =>
      response.text(),
    );
    expect(metrics).toMatch(/^gatehouse_detection_leader 1$/m);
    expect(metrics).toMatch(
      /gatehouse_findings_total\{rule="credential_stuffing",mode="enforce"\} 1/,
    );
  });

  it('lists, pages and resolves findings for an administrator', async () => {
    const token = JSON.parse((await login('root', 'root-password-for-alerts')).body) as {
      access_token: string;
    };
    const auth = { authorization: `Bearer ${token.access_token}` };
    const get = (query: string) =>
      sendRaw(gatehouse.url, { method: 'GET', path: `/audit/alerts${query}`, headers: auth });

    const first = await get('?limit=1');
    expect(first.status).toBe(200);
    const page = JSON.parse(first.body) as { items: Finding[]; next_cursor: string | null };
    expect(page.items).toHaveLength(1);
    expect(page.next_cursor).not.toBeNull();
    const second = JSON.parse((await get(`?limit=1&cursor=${page.next_cursor}`)).body) as {
      items: Finding[];
    };
    expect(second.items).toHaveLength(1);
    expect(second.items[0].id).not.toBe(page.items[0].id);
    expect(second.items[0].last_seen <= page.items[0].last_seen).toBe(true);
    expect((await get('?sort=rule')).status).toBe(400);
    expect((await get('?limit=0')).status).toBe(400);
    expect((await get('?cursor=bogus')).status).toBe(400);
    expect((await sendRaw(gatehouse.url, { method: 'GET', path: '/audit/alerts' })).status).toBe(
      401,
    );

    const patch = (id: string, body: string) =>
      sendRaw(gatehouse.url, {
        method: 'PATCH',
        path: `/audit/alerts/${id}`,
        headers: { ...auth, 'content-type': 'application/json' },
        body,
      });
    const id = page.items[0].id;
    const resolved = await patch(id, JSON.stringify({ status: 'resolved' }));
    expect(resolved.status).toBe(200);
    expect(JSON.parse(resolved.body)).toMatchObject({ id, status: 'resolved' });
    expect((await patch(id, JSON.stringify({ status: 'closed' }))).status).toBe(400);
    expect((await patch(id, JSON.stringify({ status: 'open', extra: 1 }))).status).toBe(400);
    expect((await patch(id, 'not json')).status).toBe(400);
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await patch(unknown, JSON.stringify({ status: 'open' }))).status).toBe(404);
    const open = JSON.parse((await get('?status=resolved')).body) as { items: Finding[] };
    expect(open.items.map((item) => item.id)).toEqual([id]);
    const actions = await client.query(
      `SELECT 1 FROM admin_actions WHERE action = 'alert_status' AND target = $1`,
      [id],
    );
    expect(actions.rowCount).toBe(1);
  });
});

describe('Detection on the embedded database', () => {
  let dataDir: string;
  let connection: DatabaseConnection;
  let config: AppConfig;

  beforeAll(async () => {
    Logger.overrideLogger(['error']);
    dataDir = temporaryDirectory('gatehouse-detection-');
    config = loadConfig({ MTLS_MODE: 'off', DATA_DIR: dataDir, AUDIT_RETENTION_DAYS: '30' });
    connection = await openDatabase(config);
    await runMigrations(connection.dataSource, true);
  }, 120_000);

  afterAll(async () => {
    await connection?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('leads alone and raises credential stuffing, quiet on a busy NAT address', async () => {
    const evaluator = evaluatorOn(connection.dataSource, config);
    await insertAttempts(connection.dataSource, [
      ...range(22).map((index) => ({
        outcome: 'unknown_user',
        username: `embedded-${index}`,
        ip: '2001:db8:aa:bb::9',
      })),
      ...range(200).map((index) => ({
        outcome: index % 40 === 0 ? 'bad_password' : 'success',
        username: `staff-${index % 100}`,
        ip: '203.0.113.50',
      })),
    ]);

    await evaluator.service.evaluateNow();

    expect(evaluator.service.isLeader).toBe(true);
    expect(evaluator.raised.map((finding) => finding.subject)).toEqual(['2001:db8:aa:bb::/64']);
    expect(evaluator.blocker.blocks.map((block) => block.subject)).toEqual(['2001:db8:aa:bb::/64']);
    await evaluator.service.onApplicationShutdown();
  });

  it('suspends the binding of a certificate locked out repeatedly when enforced', async () => {
    const enforcing = evaluatorOn(
      connection.dataSource,
      loadConfig({ MTLS_MODE: 'off', DATA_DIR: dataDir, DETECT_CERTIFICATE_LOCKOUTS: 'enforce' }),
    );
    await insertAttempts(
      connection.dataSource,
      range(4).map(() => ({
        outcome: 'locked',
        username: 'cert-owner',
        ip: '192.0.2.30',
        fingerprint: fingerprint('d'),
      })),
    );

    await enforcing.service.evaluateNow();
    await enforcing.service.onApplicationShutdown();

    expect(enforcing.blocker.suspended).toEqual([fingerprint('d')]);
    expect(enforcing.raised.map((finding) => finding.rule)).toEqual(['certificate_lockouts']);
  });

  it('creates partitions ahead and drops expired ones with a plain detach', async () => {
    const service = new PartitionMaintenanceService(config, connection.dataSource);
    await connection.dataSource.query(
      `SELECT ensure_login_attempt_partitions((now() AT TIME ZONE 'UTC')::date - 40, 1)`,
    );
    const day = (offset: number) =>
      `login_attempts_${new Date(Date.now() + offset * 86_400_000)
        .toISOString()
        .slice(0, 10)
        .replace(/-/g, '')}`;

    expect(await service.maintain(Date.now() + 5 * 86_400_000)).toBe(true);

    const rows = (await connection.dataSource.query(
      'SELECT to_regclass($1) IS NOT NULL AS old, to_regclass($2) IS NOT NULL AS ahead',
      [day(-40), day(17)],
    )) as Array<{ old: boolean; ahead: boolean }>;
    expect(rows[0]).toEqual({ old: false, ahead: true });
  });
});

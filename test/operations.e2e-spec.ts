import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Client } from 'pg';
import { MIGRATIONS } from '../migrations';
import { buildCertificateAuthority } from '../src/mtls/testing/certificate-builders';
import {
  GatehouseProcess,
  createTestDatabase,
  serverDatabaseUrl,
  startGatehouse,
  temporaryDirectory,
} from './support/gatehouse';
import { cleanEnvironment, runCli } from './support/cli';
import { RawResponse, boundedAgent, postLogin, sendRaw } from './support/login-requests';
import { redisServerUnavailableReason, startRedisServer } from './support/redis';
import {
  FinishedProcess,
  ServiceChild,
  runUntilExit,
  spawnService,
} from './support/service-process';
import {
  DatabaseTarget,
  attemptCountsByOutcome,
  createUsers,
  databaseEnvironment,
} from './support/users';

// Starts take seconds on the embedded database and far longer on a busy machine.
jest.setTimeout(180_000);
const START_TIMEOUT_MS = 150_000;

const OWNER = { username: 'alice', password: 'correct horse battery staple' };
const SECOND_USER = { username: 'bob', password: 'another long passphrase' };
const serverMissing = serverDatabaseUrl() === undefined;
const redisServerMissing = redisServerUnavailableReason();

if (serverMissing) {
  process.stderr.write(
    'operations e2e: DATABASE_URL is unset; the server-database starts are skipped\n',
  );
}
if (redisServerMissing !== undefined) {
  process.stderr.write(
    `operations e2e: ${redisServerMissing}; the Redis outage check is skipped\n`,
  );
}

/** A database for one service: a fresh Postgres database when DATABASE_URL is set. */
async function prepareTarget(): Promise<DatabaseTarget & { drop(): Promise<void> }> {
  const dataDir = temporaryDirectory();
  if (serverMissing) {
    return { dataDir, drop: async () => undefined };
  }
  const database = await createTestDatabase();
  return { dataDir, databaseUrl: database.url, drop: database.drop };
}

function get(url: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return sendRaw(url, { method: 'GET', path: new URL(url).pathname, headers });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The stderr a refused start must write: exactly one line, `gatehouse: KEY: reason`. */
function expectRefusal(stderr: string, key: string): void {
  const lines = stderr.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0].startsWith(`gatehouse: ${key}: `)).toBe(true);
}

async function writeCaFile(directory: string): Promise<string> {
  const authority = await buildCertificateAuthority();
  const file = path.join(directory, 'ca.crt');
  fs.writeFileSync(file, authority.pem);
  return file;
}

describe('Production guard rails', () => {
  const production = { NODE_ENV: 'production' };

  it('refuses the embedded database in production unless ALLOW_UNSAFE names embedded', async () => {
    const refused = await runUntilExit({ ...production, MTLS_MODE: 'off' });
    expect(refused.code).not.toBe(0);
    expectRefusal(refused.stderr, 'DATABASE_URL');
    expect(refused.stderr).toContain('ALLOW_UNSAFE=embedded');

    const allowed = await runUntilExit({
      ...production,
      MTLS_MODE: 'off',
      ALLOW_UNSAFE: 'embedded',
    });
    expect(allowed.code).not.toBe(0);
    expectRefusal(allowed.stderr, 'MTLS_MODE');
  });

  it('refuses MTLS_MODE=off in production unless ALLOW_UNSAFE names mtls_off', async () => {
    const refused = await runUntilExit({
      ...production,
      MTLS_MODE: 'off',
      ALLOW_UNSAFE: 'embedded',
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('ALLOW_UNSAFE=mtls_off');

    const service = await startGatehouse({
      timeoutMs: START_TIMEOUT_MS,
      env: { ...production, MTLS_MODE: 'off', ALLOW_UNSAFE: 'embedded,mtls_off' },
    });
    expect(service.output()).toContain('MTLS_MODE=off: plain HTTP');
    expect((await get(`${service.managementUrl}/health/ready`)).status).toBe(200);
    expect(await service.stop()).toBe(0);
  });

  it('refuses direct mode without TLS files unless ALLOW_UNSAFE names missing_tls', async () => {
    const refused = await runUntilExit({
      ...production,
      MTLS_MODE: 'direct',
      ALLOW_UNSAFE: 'embedded',
    });
    expect(refused.code).not.toBe(0);
    expectRefusal(refused.stderr, 'TLS_CERT_FILE');
    expect(refused.stderr).toContain('ALLOW_UNSAFE=missing_tls');

    // Allowed, production falls back to the development CA under DATA_DIR, with a warning.
    const service = await startGatehouse({
      timeoutMs: START_TIMEOUT_MS,
      env: { ...production, MTLS_MODE: 'direct', ALLOW_UNSAFE: 'embedded,missing_tls' },
    });
    expect(service.url.startsWith('https://')).toBe(true);
    expect(service.output()).toContain('created a development CA');
    expect(service.output()).not.toContain('admin password:');
    expect(await service.stop()).toBe(0);
  });

  it('refuses proxy trust by address alone unless ALLOW_UNSAFE names proxy_ip_trust', async () => {
    const caFile = await writeCaFile(temporaryDirectory());
    const proxyMode = { ...production, MTLS_MODE: 'proxy', TRUSTED_PROXIES: '127.0.0.1' };
    const refused = await runUntilExit({
      ...proxyMode,
      TLS_CA_FILE: caFile,
      ALLOW_UNSAFE: 'embedded',
    });
    expect(refused.code).not.toBe(0);
    expectRefusal(refused.stderr, 'TRUSTED_PROXY_CERTS');
    expect(refused.stderr).toContain('ALLOW_UNSAFE=proxy_ip_trust');

    const service = await startGatehouse({
      timeoutMs: START_TIMEOUT_MS,
      env: { ...proxyMode, TLS_CA_FILE: caFile, ALLOW_UNSAFE: 'embedded,proxy_ip_trust' },
    });
    expect(service.output()).toContain('no TRUSTED_PROXY_CERTS');
    expect(await service.stop()).toBe(0);
  });

  it.each([
    ['PORT', { PORT: 'abc' }],
    ['LOGIN_FAILURE_WINDOW', { LOGIN_FAILURE_WINDOW: '5x' }],
    ['MTLS_MODE', { MTLS_MODE: 'sometimes' }],
    ['ALLOW_UNSAFE', { ALLOW_UNSAFE: 'everything' }],
  ])('stops an invalid %s with one line naming it', async (key, env) => {
    const refused = await runUntilExit({ MTLS_MODE: 'off', ...env });
    expect(refused.code).not.toBe(0);
    expectRefusal(refused.stderr, key);
  });

  it('stops a catch-all TRUSTED_PROXIES with one line naming it', async () => {
    const caFile = await writeCaFile(temporaryDirectory());
    const refused = await runUntilExit({
      MTLS_MODE: 'proxy',
      TLS_CA_FILE: caFile,
      TRUSTED_PROXIES: '0.0.0.0/0',
    });
    expect(refused.code).not.toBe(0);
    expectRefusal(refused.stderr, 'TRUSTED_PROXIES');
  });

  it('reads secrets from <KEY>_FILE and never prints their values', async () => {
    const directory = temporaryDirectory();
    const marker = 'secret-marker-7f3a91';
    const urlFile = path.join(directory, 'database-url');
    fs.writeFileSync(urlFile, `mysql://gatehouse:${marker}@127.0.0.1:3306/gatehouse\n`);
    const refused = await runUntilExit({ MTLS_MODE: 'off', DATABASE_URL_FILE: urlFile });
    expect(refused.code).not.toBe(0);
    expectRefusal(refused.stderr, 'DATABASE_URL');
    expect(refused.stdout + refused.stderr).not.toContain(marker);

    const keyFile = path.join(directory, 'audit-key');
    fs.writeFileSync(keyFile, `${marker.slice(0, 8)}\n`);
    const shortKey = await runUntilExit({ MTLS_MODE: 'off', AUDIT_USERNAME_KEY_FILE: keyFile });
    expectRefusal(shortKey.stderr, 'AUDIT_USERNAME_KEY');
    expect(shortKey.stdout + shortKey.stderr).not.toContain(marker.slice(0, 8));
  });

  (serverMissing ? it.skip : it)('starts on a DATABASE_URL_FILE without printing it', async () => {
    const database = await createTestDatabase();
    try {
      const directory = temporaryDirectory();
      const marker = 'db-password-marker-41c9';
      const url = new URL(database.url);
      url.password = marker;
      const urlFile = path.join(directory, 'database-url');
      const keyFile = path.join(directory, 'audit-key');
      fs.writeFileSync(urlFile, `${url.toString()}\n`);
      fs.writeFileSync(keyFile, 'audit-key-from-a-file-0123456789\n');
      const service = await startGatehouse({
        timeoutMs: START_TIMEOUT_MS,
        env: {
          MTLS_MODE: 'off',
          DATABASE_URL_FILE: urlFile,
          AUDIT_USERNAME_KEY_FILE: keyFile,
          LIMITER_STORE: 'memory',
        },
      });
      await postLogin(service.url, { username: 'nobody', password: 'wrong password' });
      expect(await service.stop()).toBe(0);
      expect(service.output()).not.toContain(marker);
      expect(service.output()).not.toContain('audit-key-from-a-file');
    } finally {
      await database.drop();
    }
  });

  it('creates DATA_DIR 0700 and key material 0600, and listens on 127.0.0.1', async () => {
    const dataDir = path.join(temporaryDirectory(), 'nested', 'data');
    const service = await startGatehouse({
      timeoutMs: START_TIMEOUT_MS,
      dataDir,
      env: { MTLS_MODE: 'direct', HOST: undefined },
    });
    try {
      expect(service.url.startsWith('https://127.0.0.1:')).toBe(true);
      expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700);
      const keyFiles = fs
        .readdirSync(path.join(dataDir, 'pki'))
        .filter((name) => name.endsWith('.key') || name.endsWith('.p12'))
        .map((name) => path.join(dataDir, 'pki', name));
      keyFiles.push(path.join(dataDir, 'audit-username.key'));
      expect(keyFiles.length).toBeGreaterThanOrEqual(3);
      for (const file of keyFiles) {
        expect([file, fs.statSync(file).mode & 0o777]).toEqual([file, 0o600]);
      }
    } finally {
      await service.stop();
    }
  });
});

(serverMissing ? describe.skip : describe)('Migrations on start', () => {
  it('migrates an empty database once when two replicas start at the same moment', async () => {
    const database = await createTestDatabase();
    const replicas: GatehouseProcess[] = [];
    try {
      const env = {
        MTLS_MODE: 'off',
        ...databaseEnvironment({ dataDir: '', databaseUrl: database.url }),
      };
      const started = await Promise.allSettled([
        startGatehouse({
          timeoutMs: START_TIMEOUT_MS,
          env,
        }),
        startGatehouse({
          timeoutMs: START_TIMEOUT_MS,
          env,
        }),
      ]);
      for (const result of started) {
        if (result.status === 'fulfilled') {
          replicas.push(result.value);
        }
      }
      expect(started.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled']);
      for (const replica of replicas) {
        expect((await get(`${replica.managementUrl}/health/ready`)).status).toBe(200);
      }

      const client = new Client({ connectionString: database.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ name: string; applied: number }>(
          'SELECT name, count(*)::int AS applied FROM schema_migrations GROUP BY name',
        );
        expect(rows).toHaveLength(MIGRATIONS.length);
        expect(rows.every((row) => row.applied === 1)).toBe(true);
      } finally {
        await client.end();
      }
    } finally {
      await Promise.all(replicas.map((replica) => replica.stop()));
      await database.drop();
    }
  });
});

(serverMissing ? describe.skip : describe)('Key rotation log', () => {
  it('logs once that the signing keys rotated after `gatehouse keys rotate`', async () => {
    const database = await createTestDatabase();
    let service: GatehouseProcess | undefined;
    try {
      const env = {
        MTLS_MODE: 'off',
        ...databaseEnvironment({ dataDir: '', databaseUrl: database.url }),
      };
      service = await startGatehouse({
        timeoutMs: START_TIMEOUT_MS,
        env,
      });
      // A first key exists from the start, so relying parties never cache an empty key set.
      const first = await get(`${service.url}/.well-known/jwks.json`);
      expect((JSON.parse(first.body) as { keys: unknown[] }).keys).toHaveLength(1);
      expect((await runCli(['keys', 'rotate'], cleanEnvironment(env))).status).toBe(0);

      // The replica rereads its key set within a few seconds and says so once.
      for (
        let round = 0;
        round < 40 && !service.output().includes('signing_keys_rotated');
        round++
      ) {
        await delay(250);
        await get(`${service.url}/.well-known/jwks.json`);
      }
      const lines = service.output().split('\n');
      expect(lines.filter((line) => line.includes('signing_keys_rotated'))).toHaveLength(1);
    } finally {
      await service?.stop();
      await database.drop();
    }
  });
});

const CONTRACT_METRICS = [
  'gatehouse_login_attempts_total',
  'gatehouse_password_hash_duration_seconds',
  'gatehouse_hash_queue_depth',
  'gatehouse_audit_backlog_rows',
  'gatehouse_audit_flush_duration_seconds',
  'gatehouse_limiter_decisions_total',
  'gatehouse_findings_total',
  'gatehouse_detection_leader',
];

/** Every label value in a Prometheus text exposition. */
function labelValues(exposition: string): string[] {
  const values: string[] = [];
  for (const line of exposition.split('\n')) {
    if (line.startsWith('#')) {
      continue;
    }
    for (const match of line.matchAll(/[a-zA-Z_][a-zA-Z0-9_]*="((?:[^"\\]|\\.)*)"/g)) {
      values.push(match[1]);
    }
  }
  return values;
}

describe('Management port', () => {
  let target: DatabaseTarget & { drop(): Promise<void> };
  let service: GatehouseProcess;
  const unknownUsername = 'mallory-label-probe';

  beforeAll(async () => {
    target = await prepareTarget();
    await createUsers(target, [OWNER, SECOND_USER]);
    service = await startGatehouse({
      timeoutMs: START_TIMEOUT_MS,
      dataDir: target.dataDir,
      env: { MTLS_MODE: 'off', LOGIN_MAX_FAILURES: '2', ...databaseEnvironment(target) },
    });
  });

  afterAll(async () => {
    await service?.stop();
    await target?.drop();
  });

  it('answers liveness, startup and readiness while up', async () => {
    const live = await get(`${service.managementUrl}/health/live`);
    const started = await get(`${service.managementUrl}/health/started`);
    const ready = await get(`${service.managementUrl}/health/ready`);
    expect([live.status, started.status, ready.status]).toEqual([200, 200, 200]);
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready' });
  });

  it('keeps health and metrics off the public port', async () => {
    expect((await get(`${service.url}/metrics`)).status).toBe(404);
    expect((await get(`${service.url}/health/ready`)).status).toBe(404);
  });

  it('exposes every contract metric and never a username or address as a label', async () => {
    expect((await postLogin(service.url, OWNER)).status).toBe(200);
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await postLogin(service.url, { username: SECOND_USER.username, password: 'wrong guess' });
      await postLogin(service.url, { username: unknownUsername, password: 'wrong guess' });
    }

    const metrics = await get(`${service.managementUrl}/metrics`);
    expect(metrics.status).toBe(200);
    for (const name of CONTRACT_METRICS) {
      expect(metrics.body).toContain(`# TYPE ${name} `);
    }
    expect(metrics.body).toMatch(
      /gatehouse_limiter_decisions_total\{limit="all",result="allowed"\} [1-9]/,
    );
    expect(metrics.body).toMatch(
      /gatehouse_limiter_decisions_total\{limit="account",result="locked"\} [1-9]/,
    );
    const values = labelValues(metrics.body);
    expect(values.length).toBeGreaterThan(0);
    for (const value of values) {
      expect(value).not.toMatch(/alice|bob|mallory|127\.0\.0\.1|::1/);
    }
  });

  it('logs the start of a lockout without the username', () => {
    const lockoutLines = service
      .output()
      .split('\n')
      .filter((line) => line.includes('lockout_started'));
    expect(lockoutLines.length).toBeGreaterThan(0);
    for (const line of lockoutLines) {
      expect(line).toContain('lockout started');
      expect(line).not.toContain(SECOND_USER.username);
    }
  });

  it('answers every 401 with WWW-Authenticate', async () => {
    const login = await postLogin(service.url, { username: 'nobody', password: 'wrong guess' });
    expect(login.status).toBe(401);
    expect(login.headers['www-authenticate']).toMatch(/^Bearer realm="gatehouse"/);

    const me = await get(`${service.url}/auth/me`, { authorization: 'Bearer not-a-token' });
    expect(me.status).toBe(401);
    expect(me.headers['www-authenticate']).toContain('error="invalid_token"');

    const missing = await get(`${service.url}/auth/me`);
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer realm="gatehouse"/);
  });

  it('logs no request lines at the default LOG_LEVEL', () => {
    expect(service.output()).not.toContain('"request completed"');
  });
});

(redisServerMissing !== undefined ? describe.skip : describe)(
  'Readiness during a Redis outage',
  () => {
    it('stays ready when Redis is down, while logins answer 503', async () => {
      const redis = await startRedisServer();
      let service: GatehouseProcess | undefined;
      let redisStopped = false;
      try {
        service = await startGatehouse({
          timeoutMs: START_TIMEOUT_MS,
          env: { MTLS_MODE: 'off', REDIS_URL: redis.url },
        });
        expect((await get(`${service.managementUrl}/health/ready`)).status).toBe(200);

        await redis.stop();
        redisStopped = true;
        const login = await postLogin(service.url, { username: 'nobody', password: 'wrong guess' });
        expect(login.status).toBe(503);
        expect(JSON.parse(login.body)).toMatchObject({ error: 'unavailable' });
        expect((await get(`${service.managementUrl}/health/ready`)).status).toBe(200);
      } finally {
        await service?.stop();
        if (!redisStopped) {
          await redis.stop();
        }
      }
    }, 180_000);
  },
);

/** The public address from pino-pretty's "gatehouse started" line. */
async function waitForPrettyStart(service: ServiceChild): Promise<string> {
  for (let waited = 0; waited < 90_000; waited += 100) {
    const plain = service.output().replace(/\u001b\[[0-9;]*m/g, '');
    const started = /gatehouse started[\s\S]*?url: "(http:\/\/127\.0\.0\.1:\d+)"/.exec(plain);
    if (started) {
      return started[1];
    }
    if (service.child.exitCode !== null) {
      break;
    }
    await delay(100);
  }
  throw new Error(`no pretty start line:\n${service.output()}`);
}

describe('Service logs', () => {
  const passwordMarker = 'pw-marker-5c2e8d';
  const newlineUsername = 'first-line\nsecond-line';

  /** Logins and bearer requests that carry the markers in every place a client can put them. */
  async function sendMarkedRequests(url: string): Promise<void> {
    await postLogin(url, { username: newlineUsername, password: `${passwordMarker}-json` });
    await postLogin(url, { username: 'alice\u2028forged', password: `${passwordMarker}-sep` });
    await sendRaw(url, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `username=${encodeURIComponent(newlineUsername)}&password=${passwordMarker}-form`,
    });
    await sendRaw(url, {
      headers: { 'content-type': 'application/json' },
      body: `{"username":"first-line\\nsecond-line","password":"${passwordMarker}-broken"`,
    });
    await sendRaw(url, {
      path: `/auth/login?password=${passwordMarker}-query`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'x', password: 'y' }),
    });
    await get(`${url}/auth/me`, { authorization: `Bearer ${passwordMarker}-token` });
  }

  function expectClean(output: string): void {
    expect(output).not.toContain(passwordMarker);
    expect(output).not.toContain(newlineUsername);
    expect(output).not.toContain('\u2028');
  }

  it('writes JSON lines without passwords or raw newlines, even at LOG_LEVEL=debug', async () => {
    const service = await startGatehouse({
      timeoutMs: START_TIMEOUT_MS,
      env: { MTLS_MODE: 'off', LOG_LEVEL: 'debug' },
    });
    await sendMarkedRequests(service.url);
    expect(await service.stop()).toBe(0);
    const output = service.output();
    expectClean(output);
    expect(output).toContain('"request completed"');
    const lines = output.split('\n').filter((line) => line.trim() !== '');
    for (const line of lines) {
      expect(() => JSON.parse(line) as unknown).not.toThrow();
    }
  });

  it('writes readable lines with LOG_FORMAT=pretty, without passwords or newlines', async () => {
    const service = spawnService(
      { MTLS_MODE: 'off', LOG_FORMAT: 'pretty', LOG_LEVEL: 'debug' },
      150_000,
    );
    let finished: FinishedProcess;
    try {
      const url = await waitForPrettyStart(service);
      await sendMarkedRequests(url);
    } finally {
      service.child.kill('SIGTERM');
      finished = await service.finished;
    }
    expect(finished.code).toBe(0);
    const output = finished.stdout + finished.stderr;
    expect(output).toContain('gatehouse started');
    expect(output.split('\n').some((line) => line.startsWith('{'))).toBe(false);
    expectClean(output);
  }, 180_000);
});

interface SentLogin {
  startedAt: number;
  status?: number;
  connectionClose?: boolean;
  error?: string;
}

/** Keeps sending logins on one keep-alive agent until `stop` says so; records each try. */
async function loginLoop(
  url: string,
  agent: http.Agent,
  worker: number,
  stop: () => boolean,
  sent: SentLogin[],
): Promise<void> {
  for (let round = 0; round < 100_000 && !stop(); round += 1) {
    const credentials =
      round % 4 === 0
        ? OWNER
        : { username: `burst-${worker}-${round}`, password: 'a wrong password' };
    const record: SentLogin = { startedAt: Date.now() };
    sent.push(record);
    try {
      const response = await postLogin(url, credentials, agent);
      record.status = response.status;
      record.connectionClose = response.headers.connection === 'close';
    } catch (error) {
      record.error = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      await delay(20);
    }
  }
}

interface ReadinessProbe {
  at: number;
  status?: number;
  body?: string;
}

async function pollReadiness(
  managementUrl: string,
  stop: () => boolean,
  probes: ReadinessProbe[],
): Promise<void> {
  for (let round = 0; round < 100_000 && !stop(); round += 1) {
    const at = Date.now();
    try {
      const response = await get(`${managementUrl}/health/ready`);
      probes.push({ at, status: response.status, body: response.body });
    } catch {
      probes.push({ at });
    }
    await delay(20);
  }
}

/** Which recorded outcomes an answered status stands for. */
const OUTCOMES_BY_STATUS: Record<number, string[]> = {
  200: ['success'],
  400: ['invalid_request'],
  401: ['bad_password', 'unknown_user', 'locked', 'disabled', 'no_cert', 'cert_unbound'],
  429: ['throttled', 'blocked'],
  503: ['unavailable'],
};

describe('Graceful shutdown', () => {
  const drainDelayMs = 1000;
  const shutdownTimeoutMs = 10_000;

  it('fails readiness, answers and records every login sent while draining, exits 0', async () => {
    const target = await prepareTarget();
    await createUsers(target, [OWNER]);
    const service = await startGatehouse({
      timeoutMs: START_TIMEOUT_MS,
      dataDir: target.dataDir,
      env: {
        MTLS_MODE: 'off',
        SHUTDOWN_DRAIN_DELAY: '1s',
        SHUTDOWN_TIMEOUT: '10s',
        IP_LOGIN_LIMIT: '1000000',
        IP_USER_LIMIT: '1000000',
        IP_FAILURE_BUDGET: '1000000',
        HASH_QUEUE_MAX: '10000',
        ...databaseEnvironment(target),
      },
    });
    const agents = Array.from({ length: 4 }, () => boundedAgent(4));
    const sent: SentLogin[] = [];
    const probes: ReadinessProbe[] = [];
    let exited = false;
    try {
      const workers = Array.from({ length: 16 }, (_, worker) =>
        loginLoop(service.url, agents[worker % agents.length], worker, () => exited, sent),
      );
      const poller = pollReadiness(service.managementUrl, () => exited, probes);
      await delay(1500);

      const signalledAt = Date.now();
      service.child.kill('SIGTERM');
      const code = await service.exited;
      const exitedAt = Date.now();
      exited = true;
      await Promise.all([...workers, poller]);

      expect(code).toBe(0);
      expect(exitedAt - signalledAt).toBeLessThan(shutdownTimeoutMs);

      // Readiness turns 503 `draining` before the public port refuses anything.
      const before = probes.filter((probe) => probe.at < signalledAt);
      expect(before.length).toBeGreaterThan(0);
      expect(before.every((probe) => probe.status === 200)).toBe(true);
      const firstDraining = probes.find((probe) => probe.at >= signalledAt && probe.status !== 200);
      expect(firstDraining).toMatchObject({ status: 503 });
      expect(JSON.parse(firstDraining!.body!)).toEqual({ status: 'draining' });
      const firstFailure = sent.find((login) => login.error !== undefined);
      if (firstFailure !== undefined) {
        expect(firstFailure.startedAt).toBeGreaterThanOrEqual(firstDraining!.at);
      }

      // Every login started before the drain delay was nearly over was answered; clients were
      // told to leave their keep-alive connections meanwhile.
      const answeredWindowEnd = firstDraining!.at + drainDelayMs - 200;
      const early = sent.filter((login) => login.startedAt < answeredWindowEnd);
      expect(early.filter((login) => login.error !== undefined)).toEqual([]);
      const closeLine = service
        .output()
        .split('\n')
        .find((line) => line.includes('"listener_closed"'));
      const closedAt = (JSON.parse(closeLine!) as { time: number }).time;
      expect(closedAt - signalledAt).toBeGreaterThanOrEqual(drainDelayMs - 50);
      const duringDrain = sent.filter(
        (login) => login.startedAt >= firstDraining!.at && login.status !== undefined,
      );
      expect(duringDrain.length).toBeGreaterThan(0);
      expect(duringDrain.every((login) => login.connectionClose)).toBe(true);

      // Every answered attempt is in the audit trail, under the outcome its status stands for.
      const recorded = await attemptCountsByOutcome(target);
      const unanswered = sent.filter((login) => login.status === undefined).length;
      let recordedTotal = 0;
      for (const [status, outcomes] of Object.entries(OUTCOMES_BY_STATUS)) {
        const answered = sent.filter((login) => login.status === Number(status)).length;
        const inAudit = outcomes.reduce((sum, outcome) => sum + (recorded[outcome] ?? 0), 0);
        recordedTotal += inAudit;
        expect([status, inAudit >= answered]).toEqual([status, true]);
        expect([status, inAudit <= answered + unanswered]).toEqual([status, true]);
      }
      const answeredTotal = sent.filter((login) => login.status !== undefined).length;
      expect(answeredTotal).toBeGreaterThanOrEqual(16);
      expect(Object.values(recorded).reduce((sum, count) => sum + count, 0)).toBe(recordedTotal);
    } finally {
      exited = true;
      agents.forEach((agent) => agent.destroy());
      await service.stop();
      await target.drop();
    }
  });
});

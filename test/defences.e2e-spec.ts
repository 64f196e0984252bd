import 'reflect-metadata';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { canonicalIp } from '../src/mtls/client-ip';
import { buildCertificateAuthority } from '../src/mtls/testing/certificate-builders';
import { cleanEnvironment, runCli } from './support/cli';
import {
  GatehouseProcess,
  createTestDatabase,
  serverDatabaseUrl,
  startGatehouse,
  temporaryDirectory,
} from './support/gatehouse';
import { RawResponse, sendRaw } from './support/login-requests';
import {
  RedisCluster,
  RedisServer,
  deleteKeysWithPrefix,
  eventually,
  listKeysWithPrefix,
  redisServerUnavailableReason,
  sharedRedisUnavailableReason,
  sharedRedisUrl,
  startRedisCluster,
  startRedisServer,
  uniqueKeyPrefix,
} from './support/redis';
import {
  DatabaseTarget,
  TestUser,
  createUsers,
  databaseEnvironment,
  withDatabase,
} from './support/users';

/**
 * Issue 4, end to end: the credential-stuffing defences counted where it matters, at the password
 * hash. Hash verifications are read twice, from the audit (rows that reached the hash) and from
 * each instance's gatehouse_password_hash_duration_seconds_count.
 */

const SHARED_REDIS_SKIP = sharedRedisUnavailableReason();
const REDIS_SERVER_SKIP = redisServerUnavailableReason();
const MAX_FAILURES = 5;
const REACHED_HASH = ['bad_password', 'unknown_user', 'success', 'disabled'];

function skipReason(reason: string | undefined, what: string): void {
  if (reason !== undefined) {
    process.stderr.write(`defences.e2e-spec: skipping ${what}: ${reason}\n`);
  }
}
skipReason(SHARED_REDIS_SKIP, 'the shared-Redis cases');
skipReason(REDIS_SERVER_SKIP, 'the cases that start their own redis-server');

const describeWithSharedRedis = SHARED_REDIS_SKIP === undefined ? describe : describe.skip;
const describeWithRedisServer = REDIS_SERVER_SKIP === undefined ? describe : describe.skip;

// ---------------------------------------------------------------------------------------------
// Deployments: one or more service instances over one database (or one embedded DATA_DIR each).

interface Database {
  target: DatabaseTarget;
  drop(): Promise<void>;
}

async function newDatabase(): Promise<Database> {
  const dataDir = temporaryDirectory('gatehouse-defences-');
  const removeDir = () => fs.rmSync(dataDir, { recursive: true, force: true });
  if (serverDatabaseUrl() === undefined) {
    return { target: { dataDir }, drop: () => Promise.resolve(removeDir()) };
  }
  const database = await createTestDatabase();
  return {
    target: { dataDir, databaseUrl: database.url },
    drop: async () => {
      await database.drop();
      removeDir();
    },
  };
}

interface LimiterBackend {
  env: Record<string, string | undefined>;
}

function sharedRedisBackend(keyPrefix: string): LimiterBackend {
  return {
    env: { REDIS_URL: sharedRedisUrl(), LIMITER_STORE: 'redis', LIMITER_KEY_PREFIX: keyPrefix },
  };
}

function memoryBackend(): LimiterBackend {
  return { env: { LIMITER_STORE: 'memory' } };
}

interface DeployOptions {
  users: TestUser[];
  env?: Record<string, string | undefined>;
  backend: LimiterBackend;
  instances?: number;
}

interface Deployment {
  instances: GatehouseProcess[];
  /** Stops every instance (the audit is flushed on the way down). */
  stop(): Promise<void>;
  /** Runs `sql` on every database of the deployment; on the embedded one, only after stop(). */
  query<T>(sql: string, parameters?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

/**
 * Starts `instances` services sharing one limiter store. On Postgres they share one database;
 * the embedded database cannot be shared, so each instance then gets its own DATA_DIR with the
 * same users, and the audit is read from all of them.
 */
async function deploy(options: DeployOptions): Promise<Deployment> {
  const count = options.instances ?? 1;
  const shared = serverDatabaseUrl() !== undefined;
  const databases: Database[] = [];
  const instances: GatehouseProcess[] = [];
  const stop = async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
  };
  const instanceDirs: string[] = [];
  const drop = async () => {
    await stop();
    await Promise.all(databases.map((database) => database.drop()));
    for (const dir of instanceDirs) {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    for (let index = 0; index < (shared ? 1 : count); index += 1) {
      const database = await newDatabase();
      databases.push(database);
      await createUsers(database.target, options.users);
    }
    for (let index = 0; index < count; index += 1) {
      const target = databases[shared ? 0 : index].target;
      const dataDir = shared ? temporaryDirectory('gatehouse-defences-') : target.dataDir;
      if (shared) {
        instanceDirs.push(dataDir);
      }
      instances.push(
        await startGatehouse({
          dataDir,
          env: {
            MTLS_MODE: 'off',
            ...databaseEnvironment(target),
            ...options.backend.env,
            ...options.env,
          },
        }),
      );
    }
  } catch (error) {
    await drop();
    throw error;
  }
  const query = async <T>(sql: string, parameters: unknown[] = []): Promise<T[]> => {
    const rows: T[] = [];
    for (const database of databases) {
      rows.push(
        ...(await withDatabase(database.target, async ({ dataSource }) => {
          return (await dataSource.query(sql, parameters)) as T[];
        })),
      );
    }
    return rows;
  };
  return { instances, stop, query, drop };
}

// ---------------------------------------------------------------------------------------------
// Requests and readings.

interface LoginOptions {
  from?: string;
  headers?: Record<string, string>;
  agent?: http.Agent;
}

function login(
  instance: GatehouseProcess,
  username: string,
  password: string,
  options: LoginOptions = {},
): Promise<RawResponse> {
  return sendRaw(instance.url, {
    headers: { 'content-type': 'application/json', ...options.headers },
    body: JSON.stringify({ username, password }),
    localAddress: options.from,
    agent: options.agent,
  });
}

interface ClientCertificateFiles {
  ca: string;
  cert?: string;
  key?: string;
}

/** A password login over TLS, with a client certificate when `files` name one. */
function loginOverTls(
  instance: GatehouseProcess,
  credentials: { username: string; password: string },
  files: ClientCertificateFiles,
  from: string,
): Promise<number> {
  const body = JSON.stringify(credentials);
  const read = (file?: string) => (file === undefined ? undefined : fs.readFileSync(file));
  return new Promise((resolve, reject) => {
    const request = https.request(
      new URL('/auth/login', instance.url),
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        ca: read(files.ca),
        cert: read(files.cert),
        key: read(files.key),
        localAddress: from,
        agent: false,
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    request.setTimeout(30_000, () => request.destroy(new Error('request timed out')));
    request.on('error', reject);
    request.end(body);
  });
}

/** How many password verifications this instance has timed. */
async function hashVerifications(instance: GatehouseProcess): Promise<number> {
  const response = await sendRaw(instance.managementUrl, { method: 'GET', path: '/metrics' });
  const match = /^gatehouse_password_hash_duration_seconds_count(?:\{[^}]*\})? (\d+)$/m.exec(
    response.body,
  );
  return match ? Number(match[1]) : 0;
}

async function totalHashVerifications(instances: GatehouseProcess[]): Promise<number> {
  const counts = await Promise.all(instances.map(hashVerifications));
  return counts.reduce((sum, count) => sum + count, 0);
}

interface AttemptRow {
  outcome: string;
  count: number;
  username: string | null;
  client_ip: string | null;
  forwarded_for: string | null;
  occurred_at: Date;
}

const ATTEMPT_COLUMNS =
  'outcome, count, username, host(client_ip) AS client_ip, forwarded_for, occurred_at';

async function attemptRows(
  deployment: Deployment,
  where = 'true',
  parameters: unknown[] = [],
): Promise<AttemptRow[]> {
  const rows = await deployment.query<AttemptRow>(
    `SELECT ${ATTEMPT_COLUMNS} FROM login_attempts WHERE ${where} ORDER BY occurred_at, id`,
    parameters,
  );
  return rows
    .map((row) => ({ ...row, count: Number(row.count), occurred_at: new Date(row.occurred_at) }))
    .sort((a, b) => a.occurred_at.getTime() - b.occurred_at.getTime());
}

function sumByOutcome(rows: AttemptRow[]): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const row of rows) {
    sums[row.outcome] = (sums[row.outcome] ?? 0) + row.count;
  }
  return sums;
}

function reachedHash(rows: AttemptRow[]): number {
  return rows
    .filter((row) => REACHED_HASH.includes(row.outcome))
    .reduce((sum, row) => sum + row.count, 0);
}

function statusCounts(responses: RawResponse[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const response of responses) {
    counts[response.status] = (counts[response.status] ?? 0) + 1;
  }
  return counts;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function loopback(host: number): string {
  return `127.0.0.${host}`;
}

/** The largest number of `times` inside any window of `windowMs`. */
function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let busiest = 0;
  for (let start = 0; start < sorted.length; start += 1) {
    const inside = sorted.filter(
      (time) => time >= sorted[start] && time < sorted[start] + windowMs,
    );
    busiest = Math.max(busiest, inside.length);
  }
  return busiest;
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function withConcurrency<T, R>(
  items: T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await work(items[index]);
    }
  });
  await Promise.all(lanes);
  return results;
}

const VICTIM: TestUser = { username: 'victim', password: 'correct horse battery staple' };

// ---------------------------------------------------------------------------------------------

describe('Credential-stuffing defences', () => {
  let sharedRedis: Redis | undefined;
  const prefixes: string[] = [];

  function newPrefix(): string {
    const prefix = uniqueKeyPrefix();
    prefixes.push(prefix);
    return prefix;
  }

  /** Shared Redis when it answers, else each process's memory. */
  function defaultBackend(): LimiterBackend {
    return SHARED_REDIS_SKIP === undefined ? sharedRedisBackend(newPrefix()) : memoryBackend();
  }

  beforeAll(() => {
    if (SHARED_REDIS_SKIP === undefined) {
      sharedRedis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: 1 });
    }
  });

  afterAll(async () => {
    if (sharedRedis) {
      for (const prefix of prefixes) {
        await deleteKeysWithPrefix(sharedRedis, prefix);
      }
      sharedRedis.disconnect();
    }
  });

  /** 200 parallel wrong passwords for one account across two instances sharing the store. */
  async function parallelAttackAcrossTwoInstances(backend: LimiterBackend): Promise<void> {
    const deployment = await deploy({ users: [VICTIM], backend, instances: 2 });
    try {
      const attempts = Array.from({ length: 200 }, (_, index) =>
        login(deployment.instances[index % 2], 'victim', `guess-${index}`, {
          from: loopback(10 + (index % 20)),
        }),
      );
      const responses = await Promise.all(attempts);
      const hashed = await totalHashVerifications(deployment.instances);
      await deployment.stop();
      const rows = await attemptRows(deployment);

      expect(responses.filter((response) => response.status === 200)).toHaveLength(0);
      expect(Object.keys(statusCounts(responses)).sort()).toEqual(expect.arrayContaining(['401']));
      for (const response of responses) {
        expect([401, 429]).toContain(response.status);
        if (response.status === 429) {
          expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        }
      }
      expect(hashed).toBeGreaterThan(0);
      expect(hashed).toBeLessThanOrEqual(MAX_FAILURES);
      const sums = sumByOutcome(rows);
      expect(reachedHash(rows)).toBe(hashed);
      expect(
        Object.keys(sums).every((outcome) =>
          ['bad_password', 'locked', 'throttled'].includes(outcome),
        ),
      ).toBe(true);
      expect(Object.values(sums).reduce((sum, count) => sum + count, 0)).toBe(200);
    } finally {
      await deployment.drop();
    }
  }

  describeWithSharedRedis('across replicas on one Redis', () => {
    it('lets at most five of 200 parallel wrong passwords reach the hash', async () => {
      const prefix = newPrefix();
      await parallelAttackAcrossTwoInstances(sharedRedisBackend(prefix));
      // LIMITER_KEY_PREFIX keeps this deployment's counters apart from anyone else's.
      expect((await listKeysWithPrefix(sharedRedis!, prefix)).length).toBeGreaterThan(0);
    }, 120_000);
  });

  describeWithRedisServer('across replicas on a Redis Cluster', () => {
    let cluster: RedisCluster;

    beforeAll(async () => {
      cluster = await startRedisCluster();
    }, 60_000);

    afterAll(() => cluster?.stop());

    it('lets at most five of 200 parallel wrong passwords reach the hash', async () => {
      await parallelAttackAcrossTwoInstances({
        env: {
          REDIS_CLUSTER_NODES: cluster.nodes.join(','),
          LIMITER_STORE: 'redis',
          LIMITER_KEY_PREFIX: newPrefix(),
        },
      });
    }, 120_000);
  });

  describe('at the edge of the failure window', () => {
    it('never lets more than five failures reach the hash in any window', async () => {
      const deployment = await deploy({
        users: [VICTIM],
        backend: defaultBackend(),
        env: {
          LOGIN_FAILURE_WINDOW: '3s',
          LOCKOUT_BASE: '1s',
          LOCKOUT_MAX: '2s',
          IP_USER_LIMIT: '1000',
        },
      });
      try {
        const [instance] = deployment.instances;
        const batch = (label: string) =>
          Promise.all(
            Array.from({ length: MAX_FAILURES }, (_, index) =>
              login(instance, 'victim', `${label}-${index}`),
            ),
          );
        // Aligned to where a fixed window of the same length would roll over.
        const boundary = Math.ceil((Date.now() + 1_000) / 3_000) * 3_000;
        await sleep(boundary - 200 - Date.now());
        await batch('before');
        await sleep(boundary + 200 - Date.now());
        const afterRoll = await batch('after');
        const hashedAtEdge = await hashVerifications(instance);
        let freed = false;
        for (let tries = 0; tries < 25 && !freed; tries += 1) {
          await sleep(400);
          await login(instance, 'victim', `later-${tries}`);
          freed = (await hashVerifications(instance)) > hashedAtEdge;
        }
        await batch('freed');
        await deployment.stop();
        const rows = await attemptRows(deployment);

        const hashed = rows.filter((row) => row.outcome === 'bad_password');
        // 100 ms of slack: rows carry the time a request arrived, a little before it reserved.
        const times = hashed.map((row) => row.occurred_at.getTime());
        expect(hashedAtEdge).toBe(MAX_FAILURES);
        expect(afterRoll.every((response) => response.status === 401)).toBe(true);
        expect(freed).toBe(true);
        expect(busiestWindow(times, 2_900)).toBeLessThanOrEqual(MAX_FAILURES);
        expect(hashed.length).toBeGreaterThan(MAX_FAILURES);
        expect(sumByOutcome(rows).locked).toBeGreaterThanOrEqual(MAX_FAILURES);
      } finally {
        await deployment.drop();
      }
    }, 60_000);
  });

  describe('username normalisation', () => {
    it('counts every spelling of one name against one account', async () => {
      const deployment = await deploy({
        users: [{ username: 'alice', password: 'alice-password-1' }],
        backend: defaultBackend(),
      });
      try {
        const [instance] = deployment.instances;
        const spellings = ['alice', 'Alice', ' alice', 'alice\t', 'ａｌｉｃｅ'];
        const wrong: RawResponse[] = [];
        for (const spelling of spellings) {
          wrong.push(await login(instance, spelling, 'not-her-password'));
        }
        const sixth = await login(instance, 'ALICE', 'alice-password-1');
        await deployment.stop();
        const rows = await attemptRows(deployment);

        expect(wrong.map((response) => response.status)).toEqual([401, 401, 401, 401, 401]);
        expect(sixth.status).toBe(401);
        expect(rows.map((row) => row.outcome)).toEqual([
          ...spellings.map(() => 'bad_password'),
          'locked',
        ]);
        expect(rows.slice(0, 5).map((row) => row.username)).toEqual(spellings.map(() => 'alice'));
        // A locked attempt never looks the name up on the login path; the audit writer resolves
        // it per batch, so the row carries the account's name rather than a keyed hash.
        expect(rows[5].username).toBe('alice');
      } finally {
        await deployment.drop();
      }
    }, 60_000);
  });

  describe('client addresses', () => {
    it('ignores an untrusted X-Forwarded-For and counts source addresses apart', async () => {
      const deployment = await deploy({
        users: [VICTIM],
        backend: defaultBackend(),
        env: { IP_LOGIN_LIMIT: '3' },
      });
      try {
        const [instance] = deployment.instances;
        const forged = await Promise.all(
          ['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4'].map((address, index) =>
            login(instance, `stranger-${index}`, 'whatever-password', {
              from: loopback(2),
              headers: { 'x-forwarded-for': address },
            }),
          ),
        );
        const otherSource = await login(instance, 'stranger-9', 'whatever-password', {
          from: loopback(3),
        });
        await deployment.stop();
        const rows = await attemptRows(deployment);

        const statuses = forged.map((response) => response.status).sort();
        expect(statuses).toEqual([401, 401, 401, 429]);
        const throttled = forged.find((response) => response.status === 429)!;
        expect(Number(throttled.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(otherSource.status).toBe(401);
        const fromForger = rows.filter((row) => row.client_ip === loopback(2));
        expect(fromForger.map((row) => row.count).reduce((a, b) => a + b, 0)).toBe(4);
        expect(fromForger.every((row) => row.forwarded_for === null)).toBe(true);
        expect(rows.filter((row) => row.client_ip === loopback(3))).toHaveLength(1);
      } finally {
        await deployment.drop();
      }
    }, 60_000);

    it('counts clients behind a trusted proxy apart by their forwarded address', async () => {
      const certificateAuthority = await buildCertificateAuthority();
      const pkiDir = temporaryDirectory('gatehouse-defences-ca-');
      const caFile = path.join(pkiDir, 'ca.crt');
      fs.writeFileSync(caFile, certificateAuthority.pem);
      const deployment = await deploy({
        users: [VICTIM],
        backend: defaultBackend(),
        env: {
          MTLS_MODE: 'proxy',
          TRUSTED_PROXIES: '127.0.0.1/32',
          TLS_CA_FILE: caFile,
          CERT_BINDING: 'off',
          IP_LOGIN_LIMIT: '3',
        },
      });
      try {
        const [instance] = deployment.instances;
        const viaProxy = (client: string, index: number) =>
          login(instance, `stranger-${index}`, 'whatever-password', {
            from: loopback(1),
            headers: { 'x-forwarded-for': `198.51.100.77, ${client}` },
          });
        const first: RawResponse[] = [];
        for (let index = 0; index < 4; index += 1) {
          first.push(await viaProxy('192.0.2.10', index));
        }
        const second = await viaProxy('192.0.2.20', 9);
        const withoutHeader = await login(instance, 'stranger-10', 'whatever-password', {
          from: loopback(1),
        });
        await deployment.stop();
        const rows = await attemptRows(deployment);

        expect(first.map((response) => response.status)).toEqual([401, 401, 401, 429]);
        expect(second.status).toBe(401);
        expect(withoutHeader.status).toBe(400);
        expect(sumByOutcome(rows.filter((row) => row.client_ip === '192.0.2.10'))).toEqual({
          unknown_user: 3,
          throttled: 1,
        });
        expect(sumByOutcome(rows.filter((row) => row.client_ip === '192.0.2.20'))).toEqual({
          unknown_user: 1,
        });
        expect(rows.some((row) => row.client_ip === '198.51.100.77')).toBe(false);
      } finally {
        await deployment.drop();
        fs.rmSync(pkiDir, { recursive: true, force: true });
      }
    }, 60_000);

    it('sees an IPv4-mapped IPv6 peer as the IPv4 address it is', () => {
      expect(canonicalIp('::ffff:127.0.0.2')).toBe('127.0.0.2');
      expect(canonicalIp('::ffff:7f00:2')).toBe('127.0.0.2');
      expect(canonicalIp('::ffff:127.0.0.3')).not.toBe(canonicalIp('::ffff:127.0.0.2'));
    });
  });

  describe('familiar sources', () => {
    it('lets the owner and other users in while an account is under attack', async () => {
      const alice: TestUser = { username: 'alice', password: 'alice-password-1' };
      const bob: TestUser = { username: 'bob', password: 'bob-password-1' };
      const deployment = await deploy({ users: [alice, bob], backend: defaultBackend() });
      try {
        const [instance] = deployment.instances;
        const familiar = loopback(5);
        const attack = () =>
          Promise.all(
            Array.from({ length: 20 }, (_, index) =>
              login(instance, 'alice', `guess-${index}`, { from: loopback(6 + (index % 4)) }),
            ),
          );

        const earlier = await login(instance, 'alice', alice.password, { from: familiar });
        const firstWave = await attack();
        const lockedOut = await login(instance, 'alice', alice.password, { from: loopback(10) });
        const [, owner, ...others] = await Promise.all([
          attack(),
          login(instance, 'alice', alice.password, { from: familiar }),
          ...Array.from({ length: 5 }, () =>
            login(instance, 'bob', bob.password, { from: loopback(11) }),
          ),
        ]);
        await deployment.stop();

        expect(earlier.status).toBe(200);
        expect(firstWave.every((response) => response.status === 401)).toBe(true);
        expect(lockedOut.status).toBe(401);
        expect(owner.status).toBe(200);
        expect(others.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
      } finally {
        await deployment.drop();
      }
    }, 60_000);
  });

  describe('familiar by certificate', () => {
    it('lets the owner in with her bound certificate while others are locked out', async () => {
      const alice: TestUser = { username: 'alice', password: 'alice-password-1' };
      const database = await newDatabase();
      const issued = temporaryDirectory('gatehouse-defences-certs-');
      const pki = path.join(database.target.dataDir, 'pki');
      let instance: GatehouseProcess | undefined;
      try {
        await createUsers(database.target, [alice]);
        const configuration = {
          NODE_ENV: 'test',
          MTLS_MODE: 'direct',
          DATA_DIR: database.target.dataDir,
          ...databaseEnvironment(database.target),
          ...defaultBackend().env,
        };
        const cli = (args: string[]) => runCli(args, cleanEnvironment(configuration));
        expect((await cli(['certs', 'init'])).status).toBe(0);
        expect((await cli(['certs', 'issue', 'alice', '--out', issued])).status).toBe(0);
        instance = await startGatehouse({
          dataDir: database.target.dataDir,
          env: {
            ...configuration,
            CERT_BINDING: 'optional',
            TLS_CERT_FILE: path.join(pki, 'server.crt'),
            TLS_KEY_FILE: path.join(pki, 'server.key'),
            TLS_CA_FILE: path.join(pki, 'ca.crt'),
          },
        });
        const ca = path.join(pki, 'ca.crt');
        const withCertificate = {
          ca,
          cert: path.join(issued, 'alice.crt'),
          key: path.join(issued, 'alice.key'),
        };
        const attack = await Promise.all(
          Array.from({ length: 12 }, (_, index) =>
            loginOverTls(
              instance!,
              { username: 'alice', password: `guess-${index}` },
              { ca },
              loopback(6 + (index % 3)),
            ),
          ),
        );
        const withoutCertificate = await loginOverTls(instance, alice, { ca }, loopback(12));
        const owner = await loginOverTls(instance, alice, withCertificate, loopback(12));

        expect(attack.every((status) => status === 401)).toBe(true);
        expect(withoutCertificate).toBe(401);
        expect(owner).toBe(200);
      } finally {
        await instance?.stop();
        await database.drop();
        fs.rmSync(issued, { recursive: true, force: true });
      }
    }, 90_000);
  });

  describe('lockout', () => {
    it('stops wrong passwords after five, and lets one through once the window frees', async () => {
      const deployment = await deploy({
        users: [VICTIM, { username: 'dora', password: 'dora-password-1', disabled: true }],
        backend: defaultBackend(),
        // Long enough for eight sequential attempts on a busy machine, short enough to wait out.
        // Locked answers spend IP_USER_LIMIT slots too; raised so waiting out the lockout is not
        // cut short by the per-address limit.
        env: {
          LOGIN_FAILURE_WINDOW: '6s',
          LOCKOUT_BASE: '1s',
          LOCKOUT_MAX: '2s',
          IP_USER_LIMIT: '100',
        },
      });
      try {
        const [instance] = deployment.instances;
        const hashedBefore = await hashVerifications(instance);
        const answers: RawResponse[] = [];
        for (let index = 0; index < 8; index += 1) {
          answers.push(await login(instance, 'victim', `guess-${index}`));
        }
        const hashedAfterEight = (await hashVerifications(instance)) - hashedBefore;

        await sleep(5_000);
        let freed = false;
        for (let tries = 0; tries < 20 && !freed; tries += 1) {
          const before = await hashVerifications(instance);
          await login(instance, 'victim', `later-guess-${tries}`);
          freed = (await hashVerifications(instance)) > before;
          if (!freed) {
            await sleep(400);
          }
        }
        await deployment.stop();
        const rows = await attemptRows(deployment);

        expect(hashedAfterEight).toBe(MAX_FAILURES);
        expect(rows.slice(0, 8).map((row) => row.outcome)).toEqual([
          ...Array.from({ length: 5 }, () => 'bad_password'),
          'locked',
          'locked',
          'locked',
        ]);
        // The sixth answer says nothing a fifth did not.
        const [fifth, sixth] = [answers[4], answers[5]];
        expect(sixth.status).toBe(fifth.status);
        expect(sixth.body).toBe(fifth.body);
        expect(sixth.headers['www-authenticate']).toBe(fifth.headers['www-authenticate']);
        expect(sixth.headers['content-type']).toBe(fifth.headers['content-type']);
        expect(freed).toBe(true);
        expect(rows[rows.length - 1].outcome).toBe('bad_password');
      } finally {
        await deployment.drop();
      }
    }, 90_000);

    it('throttles a flood at a locked account instead of recording each as a lockout', async () => {
      const deployment = await deploy({ users: [VICTIM], backend: defaultBackend() });
      try {
        const [instance] = deployment.instances;
        const answers: RawResponse[] = [];
        for (let index = 0; index < 40; index += 1) {
          answers.push(await login(instance, 'victim', `flood-${index}`));
        }
        await deployment.stop();
        const rows = await attemptRows(deployment);
        const outcomes = sumByOutcome(rows);

        // IP_USER_LIMIT (10 per 15 minutes) counts the locked answers too, so the rest are 429.
        expect(statusCounts(answers)).toEqual({ 401: 10, 429: 30 });
        expect(outcomes).toEqual({ bad_password: MAX_FAILURES, locked: 5, throttled: 30 });
        // Refused before any lookup, yet recorded under the account's name, not a keyed hash.
        const locked = rows.filter((row) => row.outcome === 'locked');
        expect(new Set(locked.map((row) => row.username))).toEqual(new Set(['victim']));
        expect(answers[39].headers['retry-after']).toBeDefined();
      } finally {
        await deployment.drop();
      }
    }, 90_000);

    it('counts only wrong passwords and unknown names as failures', async () => {
      const deployment = await deploy({
        users: [{ username: 'dora', password: 'dora-password-1', disabled: true }],
        backend: defaultBackend(),
      });
      try {
        const [instance] = deployment.instances;
        const disabled: RawResponse[] = [];
        for (let index = 0; index < 7; index += 1) {
          disabled.push(await login(instance, 'dora', 'dora-password-1'));
        }
        const malformed: RawResponse[] = [];
        for (let index = 0; index < 7; index += 1) {
          malformed.push(
            await sendRaw(instance.url, {
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ username: 'nobody-here', password: ['x'] }),
            }),
          );
        }
        const unknown: RawResponse[] = [];
        for (let index = 0; index < 6; index += 1) {
          unknown.push(await login(instance, 'nobody-here', `guess-${index}`));
        }
        await deployment.stop();
        const rows = await attemptRows(deployment);

        expect(disabled.every((response) => response.status === 401)).toBe(true);
        expect(malformed.every((response) => response.status === 400)).toBe(true);
        expect(unknown.every((response) => response.status === 401)).toBe(true);
        expect(sumByOutcome(rows)).toEqual({
          disabled: 7,
          invalid_request: 7,
          unknown_user: 5,
          locked: 1,
        });
        expect(rows[rows.length - 1].outcome).toBe('locked');
      } finally {
        await deployment.drop();
      }
    }, 60_000);

    it('gives an attacker no extra guesses for logging in to an account of their own', async () => {
      const deployment = await deploy({
        users: [VICTIM, { username: 'carol', password: 'carol-password-1' }],
        backend: defaultBackend(),
      });
      try {
        const [instance] = deployment.instances;
        const own: RawResponse[] = [];
        for (let index = 0; index < 8; index += 1) {
          await login(instance, 'victim', `guess-${index}`, { from: loopback(7) });
          own.push(await login(instance, 'carol', 'carol-password-1', { from: loopback(7) }));
        }
        await deployment.stop();
        const rows = await attemptRows(deployment, `username IS DISTINCT FROM 'carol'`);

        expect(own.every((response) => response.status === 200)).toBe(true);
        expect(rows.map((row) => row.outcome)).toEqual([
          ...Array.from({ length: 5 }, () => 'bad_password'),
          'locked',
          'locked',
          'locked',
        ]);
      } finally {
        await deployment.drop();
      }
    }, 60_000);
  });

  describe('a flood from one source', () => {
    it('folds refused attempts into rows whose counts add up, others log in', async () => {
      const legit: TestUser = { username: 'legit', password: 'legit-password-1' };
      const deployment = await deploy({
        users: [VICTIM, legit],
        backend: defaultBackend(),
        env: { IP_LOGIN_LIMIT: '10' },
      });
      try {
        const [instance] = deployment.instances;
        const flooder = loopback(30);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 64, localAddress: flooder });
        const flood = withConcurrency(
          Array.from({ length: 20_000 }, (_, index) => index),
          64,
          // A fresh name each time: no lockout, so the per-address limit is what refuses them.
          (index) => login(instance, `flood-${index}`, 'some-password', { agent, from: flooder }),
        );
        const legitimate: RawResponse[] = [];
        let flooding = true;
        const floodDone = flood.finally(() => (flooding = false));
        // Each from an address of its own: IP_LOGIN_LIMIT is 10 for everyone in this deployment.
        for (let index = 0; index < 40 && (flooding || legitimate.length < 5); index += 1) {
          const from = loopback(31 + index);
          legitimate.push(await login(instance, 'legit', legit.password, { from }));
          await sleep(250);
        }
        const answers = await floodDone;
        agent.destroy();
        await deployment.stop();
        const fromFlooder = await attemptRows(deployment, 'host(client_ip) = $1', [flooder]);

        expect(statusCounts(answers)).toEqual({ 401: 10, 429: 19_990 });
        expect(legitimate.length).toBeGreaterThanOrEqual(5);
        expect(legitimate.map((response) => response.status)).toEqual(legitimate.map(() => 200));
        const total = fromFlooder.reduce((sum, row) => sum + row.count, 0);
        expect(total).toBe(20_000);
        expect(fromFlooder.length).toBeLessThan(20_000);
        expect(fromFlooder.some((row) => row.count > 1)).toBe(true);
        expect(sumByOutcome(fromFlooder)).toEqual({ unknown_user: 10, throttled: 19_990 });
      } finally {
        await deployment.drop();
      }
    }, 240_000);
  });

  describeWithRedisServer('when Redis goes away', () => {
    it('answers 503 while Redis is down and recovers without a restart', async () => {
      let redis: RedisServer | undefined = await startRedisServer();
      const port = redis.port;
      const deployment = await deploy({
        users: [VICTIM],
        backend: { env: { REDIS_URL: redis.url, LIMITER_STORE: 'redis' } },
      });
      try {
        const [instance] = deployment.instances;
        const before = await login(instance, 'victim', VICTIM.password);

        await redis.stop();
        redis = undefined;
        const during: RawResponse[] = [];
        for (let index = 0; index < 3; index += 1) {
          during.push(await login(instance, 'victim', VICTIM.password));
        }
        const live = await sendRaw(instance.managementUrl, { method: 'GET', path: '/health/live' });
        const runningThrough = instance.child.exitCode === null;

        redis = await startRedisServer({ port });
        const after = await eventually(async () => {
          const response = await login(instance, 'victim', VICTIM.password);
          expect(response.status).toBe(200);
          return response;
        }, 30_000);
        await deployment.stop();
        const rows = await attemptRows(deployment);

        expect(before.status).toBe(200);
        for (const response of during) {
          expect(response.status).toBe(503);
          expect(response.headers['content-type']).toContain('application/problem+json');
          expect(JSON.parse(response.body)).toMatchObject({ error: 'unavailable', status: 503 });
        }
        expect(live.status).toBe(200);
        expect(runningThrough).toBe(true);
        expect(after.status).toBe(200);
        expect(sumByOutcome(rows).unavailable).toBeGreaterThanOrEqual(during.length);
      } finally {
        await deployment.drop();
        await redis?.stop();
      }
    }, 90_000);

    it('answers 503 within the command timeout while Redis hangs, then recovers', async () => {
      const redis = await startRedisServer();
      const deployment = await deploy({
        users: [VICTIM],
        backend: { env: { REDIS_URL: redis.url, LIMITER_STORE: 'redis' } },
      });
      try {
        const [instance] = deployment.instances;
        const before = await login(instance, 'victim', VICTIM.password);

        redis.pause();
        const hanging = await login(instance, 'victim', VICTIM.password);
        redis.resume();
        const after = await eventually(async () => {
          const response = await login(instance, 'victim', VICTIM.password);
          expect(response.status).toBe(200);
          return response;
        }, 30_000);

        expect(before.status).toBe(200);
        expect(hanging.status).toBe(503);
        expect(JSON.parse(hanging.body)).toMatchObject({ error: 'unavailable' });
        // Fails closed at the 2 s command timeout instead of waiting for Redis.
        expect(hanging.elapsedMs).toBeLessThan(10_000);
        expect(after.status).toBe(200);
      } finally {
        redis.resume();
        await deployment.drop();
        await redis.stop();
      }
    }, 90_000);
  });

  describe('admin unlock', () => {
    it('unlocks a locked account for an admin, records it, and is rate-limited', async () => {
      const admin: TestUser = { username: 'root', password: 'root-password-1', roles: ['admin'] };
      const frank: TestUser = { username: 'frank', password: 'frank-password-1' };
      const deployment = await deploy({
        users: [admin, frank, { username: 'grace', password: 'grace-password-1' }],
        backend: defaultBackend(),
        env: { UNLOCK_LIMIT: '3' },
      });
      try {
        const [instance] = deployment.instances;
        const adminAddress = loopback(40);
        const tokenOf = async (user: string, password: string) => {
          const response = await login(instance, user, password, { from: adminAddress });
          expect(response.status).toBe(200);
          return (JSON.parse(response.body) as { access_token: string }).access_token;
        };
        const adminToken = await tokenOf('root', admin.password);
        const userToken = await tokenOf('grace', 'grace-password-1');
        const unlock = (name: string, token?: string) =>
          sendRaw(instance.url, {
            path: `/admin/users/${encodeURIComponent(name)}/unlock`,
            headers: token ? { authorization: `Bearer ${token}` } : {},
            localAddress: adminAddress,
          });

        for (let index = 0; index < MAX_FAILURES; index += 1) {
          await login(instance, 'frank', `guess-${index}`, { from: loopback(41) });
        }
        const whileLocked = await login(instance, 'frank', frank.password, { from: loopback(41) });
        const anonymous = await unlock('frank');
        const notAdmin = await unlock('frank', userToken);
        const unlocked = await unlock('Frank', adminToken);
        const afterUnlock = await login(instance, 'frank', frank.password, { from: loopback(41) });
        const unknown = await unlock('nobody-here', adminToken);
        const again = await unlock('frank', adminToken);
        const overLimit = await unlock('frank', adminToken);
        await deployment.stop();
        const actions = await deployment.query<{
          actor: string;
          action: string;
          target: string;
          client_ip: string;
          request_id: string | null;
          detail: { refilled: boolean };
        }>(
          `SELECT actor, action, target, host(client_ip) AS client_ip, request_id, detail
           FROM admin_actions ORDER BY occurred_at`,
        );

        expect(whileLocked.status).toBe(401);
        expect(anonymous.status).toBe(401);
        expect(notAdmin.status).toBe(403);
        expect(unlocked.status).toBe(204);
        expect(afterUnlock.status).toBe(200);
        expect(unknown.status).toBe(404);
        expect(unknown.headers['content-type']).toContain('application/problem+json');
        expect(JSON.parse(unknown.body)).toMatchObject({ error: 'not_found', status: 404 });
        expect(again.status).toBe(204);
        expect(overLimit.status).toBe(429);
        expect(Number(overLimit.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(actions).toEqual([
          expect.objectContaining({
            actor: 'root',
            action: 'unlock',
            target: 'frank',
            client_ip: adminAddress,
            request_id: unlocked.headers['x-request-id'] ?? expect.any(String),
            detail: { refilled: true },
          }),
          expect.objectContaining({
            action: 'unlock',
            target: 'frank',
            detail: { refilled: false },
          }),
        ]);
      } finally {
        await deployment.drop();
      }
    }, 60_000);
  });
});

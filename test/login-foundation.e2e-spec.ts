import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AuditWriter } from '../src/audit/audit-writer';
import { buildAttemptRecord } from '../src/audit/testing/attempt-record.builder';
import { CliResult, buildCli, cleanEnvironment, runCli } from './support/cli';
import {
  GatehouseProcess,
  baseEnvironment,
  createTestDatabase,
  serverDatabaseUrl,
  startGatehouse,
  temporaryDirectory,
} from './support/gatehouse';
import { answeredOutcomes, buildBurst, expectedStatus, sendBurst } from './support/login-burst';
import {
  RawRequest,
  RawResponse,
  boundedAgent,
  postLogin,
  sendRaw,
} from './support/login-requests';
import {
  DatabaseTarget,
  TestUser,
  attemptCountsByOutcome,
  createUsers,
  databaseEnvironment,
  withDatabase,
} from './support/users';

/** Limits far above anything these specs send, so throttling never decides an outcome here. */
const RELAXED_LIMITS = {
  MTLS_MODE: 'off',
  IP_LOGIN_LIMIT: '1000000',
  IP_USER_LIMIT: '1000000',
  LOGIN_MAX_FAILURES: '1000',
  IP_FAILURE_BUDGET: '1000000',
  HASH_QUEUE_MAX: '100000',
};

const BURST_SIZE = 1000;
const BURST_SOCKETS = 32;

interface DatabaseKind {
  name: string;
  server: boolean;
}

const DATABASE_KINDS: DatabaseKind[] = [
  { name: 'embedded', server: false },
  ...(serverDatabaseUrl() ? [{ name: 'server', server: true }] : []),
];
if (!serverDatabaseUrl()) {
  process.stderr.write(
    'login foundation e2e: DATABASE_URL is unset; the server runs are skipped\n',
  );
}

function burstUsers(count: number): TestUser[] {
  return Array.from({ length: count }, (_, index) => ({
    username: `burst-user-${index}`,
    password: `correct horse ${index} ${randomBytes(4).toString('hex')}`,
  }));
}

/** A data directory and, on the server kind, a database of the spec's own. */
async function prepareTarget(kind: DatabaseKind): Promise<{
  target: DatabaseTarget;
  cleanup(): Promise<void>;
}> {
  const dataDir = temporaryDirectory('gatehouse-login-');
  if (!kind.server) {
    return { target: { dataDir }, cleanup: async () => fs.rmSync(dataDir, { recursive: true }) };
  }
  const database = await createTestDatabase();
  return {
    target: { dataDir, databaseUrl: database.url },
    cleanup: async () => {
      await database.drop();
      fs.rmSync(dataDir, { recursive: true });
    },
  };
}

function startOn(
  target: DatabaseTarget,
  env: Record<string, string> = {},
): Promise<GatehouseProcess> {
  return startGatehouse({
    dataDir: target.dataDir,
    env: { ...RELAXED_LIMITS, ...databaseEnvironment(target), ...env },
  });
}

function withoutZeros(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([, count]) => count > 0));
}

beforeAll(() => buildCli(), 300_000);

describe.each(DATABASE_KINDS)('Login burst on the $name database', (kind) => {
  const users = burstUsers(5);
  let target: DatabaseTarget;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    ({ target, cleanup } = await prepareTarget(kind));
    await createUsers(target, users);
  }, 60_000);

  afterEach(() => cleanup());

  it('records 1,000 concurrent attempts with the outcome each was answered with', async () => {
    const service = await startOn(target);
    const agent = boundedAgent(BURST_SOCKETS);
    const burst = buildBurst(users, BURST_SIZE, randomBytes(4).toString('hex'));

    const results = await sendBurst(service.url, burst, agent);
    agent.destroy();
    const exitCode = await service.stop();

    const failures = results.filter((result) => result.error).map((r) => r.error!.message);
    expect(failures).toEqual([]);
    const wrongStatus = results.filter(
      (result) => result.response!.status !== expectedStatus(result.kind),
    );
    expect(wrongStatus.map((r) => `${r.kind}: ${r.response!.status} ${r.response!.body}`)).toEqual(
      [],
    );
    expect(exitCode).toBe(0);
    expect(await attemptCountsByOutcome(target)).toEqual({
      success: 250,
      bad_password: 250,
      unknown_user: 250,
      invalid_request: 250,
    });
  }, 300_000);

  it('records every answered attempt when SIGTERM arrives in the middle of a burst', async () => {
    const service = await startOn(target);
    const agent = boundedAgent(BURST_SOCKETS);
    const burst = buildBurst(users, BURST_SIZE, randomBytes(4).toString('hex'));
    let signalled = false;

    const results = await sendBurst(service.url, burst, agent, (answered) => {
      if (answered === 200 && !signalled) {
        signalled = true;
        service.child.kill('SIGTERM');
      }
    });
    agent.destroy();
    const exitCode = await service.exited;

    const answered = answeredOutcomes(results);
    const answeredTotal = Object.values(answered).reduce((sum, count) => sum + count, 0);
    expect(signalled).toBe(true);
    expect(answeredTotal).toBeGreaterThanOrEqual(200);
    expect(answeredTotal).toBeLessThan(BURST_SIZE);
    expect(exitCode).toBe(0);
    const recorded = withoutZeros(await attemptCountsByOutcome(target));
    expect(recorded).toEqual(answered);
  }, 300_000);
});

const JSON_TYPE = { 'content-type': 'application/json' };
const FORM_TYPE = { 'content-type': 'application/x-www-form-urlencoded' };

function json(body: unknown): RawRequest {
  return { headers: JSON_TYPE, body: JSON.stringify(body) };
}

function rawJson(...parts: Array<string | number[]>): RawRequest {
  const body = Buffer.concat(
    parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : Buffer.from(part))),
  );
  return { headers: JSON_TYPE, body };
}

function form(body: string | Buffer): RawRequest {
  return { headers: FORM_TYPE, body };
}

const MEGABYTE = 'p'.repeat(1024 * 1024);

/** Requests that must each be answered 400 invalid_request and recorded as such. */
const BAD_INPUTS: Array<[string, RawRequest]> = [
  ['a missing username', json({ password: 'secret-password' })],
  ['a missing password', json({ username: 'alice' })],
  ['an empty object', json({})],
  ['a number as username', json({ username: 42, password: 'secret-password' })],
  ['a boolean as password', json({ username: 'alice', password: true })],
  ['null as password', json({ username: 'alice', password: null })],
  ['an array as username', json({ username: ['alice'], password: 'secret-password' })],
  ['an object as password', json({ username: 'alice', password: { $ne: '' } })],
  ['an unexpected field', json({ username: 'alice', password: 'secret', admin: true })],
  [
    'a __proto__ field',
    rawJson('{"__proto__":{"admin":true},"username":"alice","password":"secret-password"}'),
  ],
  ['a JSON array body', json([{ username: 'alice', password: 'secret-password' }])],
  ['a JSON string body', json('alice')],
  ['a JSON null body', rawJson('null')],
  ['broken JSON', rawJson('{"username":"alice","password":')],
  ['duplicate form fields', form('username=alice&username=bob&password=secret-password')],
  ['a duplicate form password', form('username=alice&password=a&password=b')],
  ['a 1 MB JSON password', json({ username: 'alice', password: MEGABYTE })],
  [
    'a 1 MB password sent chunked',
    { ...json({ username: 'alice', password: MEGABYTE }), chunked: true },
  ],
  ['a 1 MB form password', form(`username=alice&password=${MEGABYTE}`)],
  ['a password one byte over the limit', json({ username: 'alice', password: 'p'.repeat(1025) })],
  ['a NUL byte in the username', json({ username: 'ali\u0000ce', password: 'secret-password' })],
  ['a NUL byte in the password', json({ username: 'alice', password: 'secret\u0000password' })],
  ['a NUL byte in a form field', form('username=ali%00ce&password=secret-password')],
  [
    'invalid UTF-8 in JSON',
    rawJson('{"username":"ali', [0xff, 0xfe], 'ce","password":"secret-password"}'),
  ],
  [
    'a truncated UTF-8 sequence in JSON',
    rawJson('{"username":"alice","password":"secret', [0xe2, 0x82], '"}'),
  ],
  [
    'invalid UTF-8 raw in a form',
    form(
      Buffer.concat([Buffer.from('username=ali'), Buffer.from([0xc3]), Buffer.from('&password=x')]),
    ),
  ],
  ['invalid UTF-8 percent-encoded in a form', form('username=ali%FFce&password=secret-password')],
  ['a bad percent escape in a form', form('username=ali%zzce&password=secret-password')],
  ['a lone surrogate escaped in JSON', rawJson('{"username":"alice\\ud800","password":"secret"}')],
  [
    'deeply nested JSON',
    rawJson(`{"username":${'['.repeat(5000)}${']'.repeat(5000)},"password":"x"}`),
  ],
  [
    'an unknown content type',
    { headers: { 'content-type': 'text/plain' }, body: 'username=alice&password=secret' },
  ],
  [
    'multipart form data',
    {
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      body: '--x\r\nContent-Disposition: form-data; name="username"\r\n\r\nalice\r\n--x--\r\n',
    },
  ],
  ['no content type', { body: '{"username":"alice","password":"secret-password"}' }],
  [
    'credentials in the query string',
    { path: '/auth/login?username=alice&password=secret-password', headers: JSON_TYPE, body: '{}' },
  ],
  [
    'credentials in the query string beside a valid body',
    {
      path: '/auth/login?password=secret-password',
      ...json({ username: 'alice', password: 'secret-password' }),
    },
  ],
  [
    'an Authorization header on login',
    {
      headers: {
        ...JSON_TYPE,
        authorization: `Basic ${Buffer.from('alice:x').toString('base64')}`,
      },
      body: JSON.stringify({ username: 'alice', password: 'secret-password' }),
    },
  ],
  ['an empty JSON body', { headers: JSON_TYPE, body: '' }],
  ['an empty form body', form('')],
  ['no body at all', { headers: JSON_TYPE }],
  ['a username of only spaces', json({ username: '     ', password: 'secret-password' })],
  ['an empty username', json({ username: '', password: 'secret-password' })],
  ['an empty password', json({ username: 'alice', password: '' })],
  ['a bell inside the username', json({ username: 'ali\u0007ce', password: 'secret-password' })],
  ['a line feed inside the username', json({ username: 'al\nice', password: 'secret-password' })],
  ['a C1 control in the username', json({ username: 'alice\u0085', password: 'secret-password' })],
  ['an escape sequence in the username', json({ username: '\u001b[31malice', password: 'x' })],
  ['a username over the byte limit', json({ username: 'a'.repeat(257), password: 'x' })],
];

describe('Login request validation', () => {
  const owner: TestUser = { username: 'alice', password: 'secret-password' };
  const CLI_PASSWORD = 'dave-password-from-stdin';
  let addedByCli: CliResult;
  let target: DatabaseTarget;
  let cleanup: () => Promise<void>;
  let service: GatehouseProcess;

  beforeAll(async () => {
    ({ target, cleanup } = await prepareTarget(DATABASE_KINDS[DATABASE_KINDS.length - 1]));
    await createUsers(target, [owner]);
    const environment = cleanEnvironment({
      DATA_DIR: target.dataDir,
      MTLS_MODE: 'off',
      NODE_ENV: 'test',
      ...databaseEnvironment(target),
    });
    addedByCli = await runCli(
      ['users', 'add', 'Dave', '--password-stdin'],
      environment,
      `${CLI_PASSWORD}\n`,
    );
    service = await startOn(target);
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await cleanup?.();
  });

  it.each(BAD_INPUTS)('answers %s with 400 invalid_request', async (_name, request) => {
    const response = await sendRaw(service.url, request);

    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(response.body)).toMatchObject({ status: 400, error: 'invalid_request' });
    expect(response.body).not.toContain('secret-password');
    expect(response.body).not.toContain(MEGABYTE.slice(0, 64));
  });

  it('logs in a user added by `users add --password-stdin`, newline stripped', async () => {
    const withPassword = await postLogin(service.url, { username: 'dave', password: CLI_PASSWORD });
    const withNewline = await postLogin(service.url, {
      username: 'DAVE',
      password: `${CLI_PASSWORD}\n`,
    });

    expect(addedByCli.status).toBe(0);
    expect(withPassword.status).toBe(200);
    expect(withNewline.status).toBe(401);
  });

  it('keeps serving after every bad input, and recorded each one as invalid_request', async () => {
    const login = await postLogin(service.url, owner);
    const exitCode = await service.stop();

    expect(login.status).toBe(200);
    expect(exitCode).toBe(0);
    expect(await attemptCountsByOutcome(target)).toEqual({
      invalid_request: BAD_INPUTS.length,
      success: 2,
      bad_password: 1,
    });
  });
});

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 0 ? (sorted[middle - 1] + sorted[middle]) / 2 : sorted[middle];
}

describe('Login refusals', () => {
  const known: TestUser = { username: 'carol', password: 'carol-correct-password' };
  const disabled: TestUser = { username: 'dan', password: 'dan-password', disabled: true };
  const samples = 40;
  let target: DatabaseTarget;
  let cleanup: () => Promise<void>;
  let service: GatehouseProcess;

  beforeAll(async () => {
    ({ target, cleanup } = await prepareTarget(DATABASE_KINDS[0]));
    await createUsers(target, [known, disabled]);
    service = await startOn(target);
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await cleanup?.();
  });

  it('answers unknown users, wrong passwords and disabled users alike, in time too', async () => {
    const senders = {
      wrongPassword: (index: number) =>
        postLogin(service.url, { username: known.username, password: `wrong-${index}` }),
      unknownUser: (index: number) =>
        postLogin(service.url, { username: `ghost-${index}`, password: `wrong-${index}` }),
      disabledUser: () =>
        postLogin(service.url, { username: disabled.username, password: disabled.password }),
    };
    const answers: Record<keyof typeof senders, RawResponse[]> = {
      wrongPassword: [],
      unknownUser: [],
      disabledUser: [],
    };
    for (let index = -5; index < samples; index += 1) {
      for (const [name, send] of Object.entries(senders)) {
        const answer = await send(index);
        if (index >= 0) {
          answers[name as keyof typeof senders].push(answer);
        }
      }
    }

    const reference = answers.wrongPassword[0];
    expect(reference.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(JSON.parse(reference.body)).toMatchObject({ error: 'invalid_credentials' });
    for (const answer of Object.values(answers).flat()) {
      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toBe(reference.headers['www-authenticate']);
      expect(answer.headers['content-type']).toBe(reference.headers['content-type']);
      expect(answer.body).toBe(reference.body);
    }
    const medians = Object.fromEntries(
      Object.entries(answers).map(([name, list]) => [
        name,
        Math.round(median(list.map((answer) => answer.elapsedMs))),
      ]),
    );
    const ratio = Math.max(...Object.values(medians)) / Math.min(...Object.values(medians));
    expect({ medians, withinOneAndAHalf: ratio <= 1.5 }).toEqual({
      medians,
      withinOneAndAHalf: true,
    });
  }, 120_000);
});

describe('Locked account refusals', () => {
  const locked: TestUser = { username: 'erin', password: 'erin-correct-password' };
  let target: DatabaseTarget;
  let cleanup: () => Promise<void>;
  let service: GatehouseProcess;

  beforeAll(async () => {
    ({ target, cleanup } = await prepareTarget(DATABASE_KINDS[0]));
    await createUsers(target, [locked]);
    service = await startOn(target, { LOGIN_MAX_FAILURES: '3', LOCKOUT_BASE: '15m' });
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await cleanup?.();
  });

  it('answers a locked account like an unknown user, in time too', async () => {
    for (let index = 0; index < 3; index += 1) {
      await postLogin(service.url, { username: locked.username, password: `wrong-${index}` });
    }
    const lockedAnswers: RawResponse[] = [];
    const unknownAnswers: RawResponse[] = [];
    for (let index = 0; index < 30; index += 1) {
      lockedAnswers.push(await postLogin(service.url, locked));
      unknownAnswers.push(
        await postLogin(service.url, { username: `ghost-${index}`, password: 'whatever' }),
      );
    }
    const exitCode = await service.stop();

    for (const answer of [...lockedAnswers, ...unknownAnswers]) {
      expect(answer.status).toBe(401);
      expect(answer.body).toBe(unknownAnswers[0].body);
      expect(answer.headers['www-authenticate']).toBe(
        unknownAnswers[0].headers['www-authenticate'],
      );
    }
    const medians = {
      locked: Math.round(median(lockedAnswers.map((answer) => answer.elapsedMs))),
      unknown: Math.round(median(unknownAnswers.map((answer) => answer.elapsedMs))),
    };
    const ratio =
      Math.max(medians.locked, medians.unknown) / Math.min(medians.locked, medians.unknown);
    expect({ medians, withinOneAndAHalf: ratio <= 1.5 }).toEqual({
      medians,
      withinOneAndAHalf: true,
    });
    expect(exitCode).toBe(0);
    expect(await attemptCountsByOutcome(target)).toEqual({
      bad_password: 3,
      locked: 30,
      unknown_user: 30,
    });
  }, 120_000);
});

/** Runs the built service to its exit, for starts that must fail. */
function runServiceToExit(
  dataDir: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...baseEnvironment(dataDir), MTLS_MODE: 'off' };
  const main = path.resolve(__dirname, '..', 'dist', 'src', 'main.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The PID of a process that has already exited. */
function deadProcessId(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', () => resolve(child.pid!));
  });
}

describe('Embedded database', () => {
  let dataDir: string;

  beforeEach(() => {
    dataDir = temporaryDirectory('gatehouse-embedded-');
  });

  afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('serialises transactions, so one rolling back never undoes another', async () => {
    const kept = await withDatabase({ dataDir }, async ({ dataSource }) => {
      const insert = 'INSERT INTO users (username, normalized_username) VALUES ($1, $1)';
      let firstInserted!: () => void;
      const inserted = new Promise<void>((resolve) => (firstInserted = resolve));
      const rolledBack = dataSource.transaction(async (manager) => {
        await manager.query(insert, ['rolled-back']);
        firstInserted();
        await new Promise((resolve) => setTimeout(resolve, 200));
        throw new Error('roll back');
      });
      await inserted;
      const committed = dataSource.transaction((manager) => manager.query(insert, ['committed']));

      await expect(rolledBack).rejects.toThrow('roll back');
      await committed;
      return (await dataSource.query(
        'SELECT normalized_username FROM users ORDER BY normalized_username',
      )) as Array<{ normalized_username: string }>;
    });

    expect(kept.map((row) => row.normalized_username)).toEqual(['committed']);
  }, 120_000);

  it('refuses a second process on the same DATA_DIR with one line naming the holder', async () => {
    const first = await startOn({ dataDir });
    const second = await runServiceToExit(dataDir);
    const stillServing = await postLogin(first.url, { username: 'nobody', password: 'x' });
    const firstExit = await first.stop();

    expect(second.code).not.toBe(0);
    const lines = second.stderr.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^gatehouse: the data directory is in use by process ${first.child.pid}\\b`),
    );
    expect(stillServing.status).toBe(401);
    expect(firstExit).toBe(0);
    expect(fs.existsSync(path.join(dataDir, 'gatehouse.lock'))).toBe(false);
  }, 120_000);

  it('takes over a lock file left by a process that is gone', async () => {
    const lockPath = path.join(dataDir, 'gatehouse.lock');
    fs.writeFileSync(lockPath, `${await deadProcessId()}\n`);

    const service = await startOn({ dataDir });
    const holder = fs.readFileSync(lockPath, 'utf8').trim();
    const exitCode = await service.stop();

    expect(holder).toBe(String(service.child.pid));
    expect(exitCode).toBe(0);
  }, 120_000);

  it('writes an audit batch as one multi-row INSERT', async () => {
    const statements: string[] = [];
    const landed = await withDatabase({ dataDir }, async ({ dataSource }) => {
      const writer = new AuditWriter(
        (sql, parameters) => {
          statements.push(sql);
          return dataSource.query(sql, parameters);
        },
        { instanceId: 'spec', foldRate: 50, flushIntervalMs: 60_000, backlogMax: 10_000 },
      );
      const now = new Date();
      for (let index = 0; index < 120; index += 1) {
        writer.record(buildAttemptRecord({ occurredAt: now, clientIp: `192.0.2.${index}` }));
      }
      for (let index = 0; index < 300; index += 1) {
        writer.record(
          buildAttemptRecord({
            occurredAt: now,
            outcome: 'invalid_request',
            clientIp: '192.0.2.1',
          }),
        );
      }

      expect(await writer.drain(Date.now() + 10_000)).toBe(0);
      return (await dataSource.query(
        `SELECT outcome, count(*)::int AS rows, sum(count)::int AS total
         FROM login_attempts GROUP BY outcome ORDER BY outcome`,
      )) as Array<{ outcome: string; rows: number; total: number }>;
    });

    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatch(/^INSERT INTO login_attempts \(.+\) SELECT \* FROM unnest\(/);
    expect(landed).toEqual([
      { outcome: 'bad_password', rows: 120, total: 120 },
      { outcome: 'invalid_request', rows: 50 + 1, total: 300 },
    ]);
  }, 120_000);
});

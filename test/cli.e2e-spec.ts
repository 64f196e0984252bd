import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { verify } from '@node-rs/argon2';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { issueClientCertificate } from '../src/pki/client-certificate';
import { accountKeys, unlockMarkerKey } from '../src/throttling/limiter-plan';
import {
  CliResult,
  TestDatabase,
  buildCli,
  cleanEnvironment,
  createTestDatabase,
  runCli,
  stderrLines,
} from './support/cli';
import { sharedRedisUnavailableReason, sharedRedisUrl } from './support/redis';

const SERVER_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const LIMITER_KEY_PREFIX = 'gatehouse:limiter:';

const redisMissing = sharedRedisUnavailableReason();
if (redisMissing) {
  process.stderr.write(`Skipping the CLI unlock test against Redis: ${redisMissing}\n`);
}

/** The command failed with `status` and said so in exactly one line, with no stack trace. */
function expectOneErrorLine(result: CliResult, status: number, pattern: RegExp): void {
  const lines = stderrLines(result);
  expect({ status: result.status, lines }).toEqual({ status, lines: [expect.any(String)] });
  expect(lines[0]).toMatch(/^gatehouse: /);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

function expectSuccess(result: CliResult): void {
  expect({ status: result.status, stderr: stderrLines(result) }).toEqual({ status: 0, stderr: [] });
}

function temporaryDirectory(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-cli-'));
}

function fileMode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

function colonHex(fingerprint: string): string {
  return fingerprint.toUpperCase().match(/../g)!.join(':');
}

function base64url(fingerprint: string): string {
  return Buffer.from(fingerprint, 'hex').toString('base64url');
}

interface ListedCertificate {
  fingerprint: string;
  username: string;
  state: string;
  certificate_login: boolean;
}

interface ListedUser {
  username: string;
  roles: string[];
  disabled: boolean;
  has_password: boolean;
  certificates: number;
}

beforeAll(() => buildCli(), 300_000);

describe('gatehouse CLI without a database', () => {
  const environment = cleanEnvironment({
    DATA_DIR: path.join(os.tmpdir(), 'gatehouse-cli-unused'),
  });
  const cli = (args: string[]): Promise<CliResult> => runCli(args, environment);

  it('prints every command for help', async () => {
    const result = await cli(['help']);

    expectSuccess(result);
    for (const command of ['migrate status', 'users import', 'certs issue', 'keys rotate']) {
      expect(result.stdout).toContain(command);
    }
  });

  it('refuses an unknown command', async () => {
    expectOneErrorLine(await cli(['frobnicate']), 2, /unknown command 'frobnicate'/);
    expectOneErrorLine(await cli(['users', 'frobnicate']), 2, /unknown command 'users frobnicate'/);
  });

  it('refuses a missing command, subcommand or argument', async () => {
    expectOneErrorLine(await cli([]), 2, /no command given/);
    expectOneErrorLine(await cli(['certs']), 2, /certs needs a subcommand/);
    expectOneErrorLine(await cli(['users', 'add']), 2, /missing <name>/);
    expectOneErrorLine(await cli(['certs', 'bind', 'alice']), 2, /missing <pem-file>/);
    expectOneErrorLine(await cli(['users', 'list', '--bogus']), 2, /unknown option --bogus/);
  });

  it('never takes a password from the arguments, and never echoes one', async () => {
    const attempts = [
      ['users', 'add', 'mallory', '--password=hunter2-secret'],
      ['users', 'set-password', 'mallory', '--password', 'hunter2-secret'],
      ['users', 'import', 'file', '--pass=hunter2-secret'],
      ['users', 'add', 'mallory', 'hunter2-secret'],
    ];

    for (const args of attempts) {
      const result = await cli(args);

      expectOneErrorLine(result, 2, /password|too many arguments/);
      expect(result.stdout + result.stderr).not.toContain('hunter2-secret');
    }
  });

  it('prints the configuration error on one line', async () => {
    const badUrl = runCli(['users', 'list'], cleanEnvironment({ DATABASE_URL: 'not a url' }));
    const noKey = runCli(
      ['users', 'list'],
      cleanEnvironment({ DATABASE_URL: 'postgres://127.0.0.1/x', LIMITER_STORE: 'memory' }),
    );

    expectOneErrorLine(await badUrl, 1, /invalid configuration: DATABASE_URL: is not a valid URL/);
    expectOneErrorLine(await noKey, 1, /AUDIT_USERNAME_KEY: is required/);
  });
});

describe('gatehouse CLI on Postgres', () => {
  let database: TestDatabase;
  let client: Client;
  let workDirectory: string;
  let environment: NodeJS.ProcessEnv;
  const cli = (args: string[], input?: string): Promise<CliResult> =>
    runCli(args, environment, input);

  async function passwordHashOf(normalizedUsername: string): Promise<string | null> {
    const { rows } = await client.query<{ password_hash: string | null }>(
      'SELECT password_hash FROM users WHERE normalized_username = $1',
      [normalizedUsername],
    );
    return rows[0]?.password_hash;
  }

  async function listCertificates(...args: string[]): Promise<ListedCertificate[]> {
    const result = await cli(['certs', 'list', '--json', ...args]);
    expectSuccess(result);
    return (JSON.parse(result.stdout) as { certificates: ListedCertificate[] }).certificates;
  }

  beforeAll(async () => {
    database = await createTestDatabase(SERVER_URL);
    workDirectory = temporaryDirectory();
    environment = cleanEnvironment({
      DATABASE_URL: database.url,
      AUDIT_USERNAME_KEY: randomBytes(24).toString('base64url'),
      LIMITER_STORE: 'memory',
      DATA_DIR: path.join(workDirectory, 'data'),
      MIGRATE_ON_START: 'false',
    });
    client = new Client({ connectionString: database.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await database?.drop();
    fs.rmSync(workDirectory, { recursive: true, force: true });
  });

  describe('migrate', () => {
    it('tells to run migrate while the schema is missing', async () => {
      expectOneErrorLine(await cli(['users', 'list']), 1, /run `gatehouse migrate`/);
    });

    it('reports the migrations as pending before they run', async () => {
      const result = await cli(['migrate', 'status', '--json']);

      expectSuccess(result);
      expect(JSON.parse(result.stdout)).toMatchObject({ up_to_date: false, pending: 1 });
    });

    it('applies the migrations once', async () => {
      const first = await cli(['migrate']);
      const second = await cli(['migrate']);

      expect(first.status).toBe(0);
      expect(first.stdout).toMatch(/applied 1 migration/);
      expect(second.status).toBe(0);
      expect(second.stdout).toMatch(/up to date/);
    });

    it('reports the migrations as applied afterwards', async () => {
      const json = await cli(['migrate', 'status', '--json']);
      const text = await cli(['migrate', 'status']);

      expect(JSON.parse(json.stdout)).toMatchObject({ up_to_date: true, pending: 0 });
      expect(JSON.parse(json.stdout).migrations[0]).toMatchObject({ applied: true });
      expectSuccess(text);
      expect(text.stdout).toMatch(/applied/);
    });
  });

  describe('users', () => {
    it('adds an admin with the password from stdin, one trailing newline stripped', async () => {
      const result = await cli(
        ['users', 'add', 'Alice', '--admin', '--password-stdin'],
        'pass: one\n',
      );

      expectSuccess(result);
      expect(result.stdout).not.toContain('pass: one');
      await expect(verify((await passwordHashOf('alice'))!, 'pass: one')).resolves.toBe(true);
      const { rows } = await client.query(
        `SELECT roles FROM users WHERE normalized_username = 'alice'`,
      );
      expect(rows[0].roles).toEqual(['admin']);
    });

    it('adds a user without a password', async () => {
      expectSuccess(await cli(['users', 'add', 'bob']));

      expect(await passwordHashOf('bob')).toBeNull();
    });

    it('refuses a duplicate user, whatever its spelling', async () => {
      expectOneErrorLine(await cli(['users', 'add', ' ALICE ']), 1, /'alice' already exists/);
    });

    it('refuses an empty password and a username with a control character', async () => {
      const emptyPassword = await cli(['users', 'add', 'carol', '--password-stdin'], '\n');
      const controlCharacter = await cli(['users', 'add', 'car\u0007ol']);

      expectOneErrorLine(emptyPassword, 1, /no password on stdin/);
      expectOneErrorLine(controlCharacter, 1, /control character/);
    });

    it('lists users as parseable JSON and as a table', async () => {
      const json = await cli(['users', 'list', '--json']);
      const table = await cli(['users', 'list']);

      expectSuccess(json);
      const users = (JSON.parse(json.stdout) as { users: ListedUser[] }).users;
      expect(users).toEqual([
        expect.objectContaining({ username: 'alice', roles: ['admin'], has_password: true }),
        expect.objectContaining({ username: 'bob', roles: [], has_password: false }),
      ]);
      expect(table.stdout.split('\n')[0]).toMatch(/^USERNAME\s+ROLES\s+STATE/);
    });

    it('disables and enables a user', async () => {
      const disabledOf = async (): Promise<boolean> =>
        (await client.query(`SELECT disabled FROM users WHERE normalized_username = 'bob'`)).rows[0]
          .disabled;

      expectSuccess(await cli(['users', 'disable', 'Bob']));
      expect(await disabledOf()).toBe(true);
      expectSuccess(await cli(['users', 'enable', 'bob']));
      expect(await disabledOf()).toBe(false);
    });

    it('reports an unknown user', async () => {
      expectOneErrorLine(await cli(['users', 'disable', 'nobody']), 1, /no user named 'nobody'/);
      expectOneErrorLine(
        await cli(['users', 'set-password', 'nobody', '--password-stdin'], 'whatever-1\n'),
        1,
        /no user named 'nobody'/,
      );
    });

    it('sets a password from stdin only', async () => {
      const withoutStdin = await cli(['users', 'set-password', 'bob']);
      const withStdin = await cli(
        ['users', 'set-password', 'bob', '--password-stdin'],
        'new pw\r\n',
      );

      expectOneErrorLine(withoutStdin, 2, /--password-stdin/);
      expectSuccess(withStdin);
      await expect(verify((await passwordHashOf('bob'))!, 'new pw')).resolves.toBe(true);
    });

    it('says where to unlock when the limits live in the service process', async () => {
      expectOneErrorLine(
        await cli(['users', 'unlock', 'alice']),
        1,
        /POST \/admin\/users\/alice\/unlock/,
      );
    });

    (redisMissing ? it.skip : it)('clears the lockout of a user in Redis', async () => {
      const redis = new Redis(sharedRedisUrl());
      const username = `cli-${randomBytes(6).toString('hex')}`;
      const keys = accountKeys(username, 'unfamiliar');
      const lockKey = `${LIMITER_KEY_PREFIX}${keys.lockKey}`;
      try {
        await redis.set(lockKey, '1', 'PX', 60_000);
        const result = await runCli(['users', 'unlock', username.toUpperCase()], {
          ...environment,
          REDIS_URL: sharedRedisUrl(),
          LIMITER_STORE: 'redis',
        });

        expectSuccess(result);
        expect(await redis.exists(lockKey)).toBe(0);
      } finally {
        await redis.del(lockKey, `${LIMITER_KEY_PREFIX}${unlockMarkerKey(username)}`);
        await redis.quit();
      }
    });
  });

  describe('users import', () => {
    it('imports good lines and reports bad ones by number, never printing a password', async () => {
      const file = path.join(workDirectory, 'users.txt');
      const lines = [
        '# staff accounts', //           1 comment
        'dave:pa:ss:with:colons', //     2 ok, split at the first colon
        '', //                           3 blank
        'no-colon-secret-AAA', //        4 bad
        'erin:', //                      5 bad: empty password
        'alice:secret-BBB', //           6 bad: exists
        'DAVE:secret-CCC', //            7 bad: repeats line 2
        `fr\u0001ank:secret-DDD`, //     8 bad: control character
        '  # indented comment', //       9 comment
        'grace:secret EEE ', //         10 ok, spaces kept
      ];
      fs.writeFileSync(file, `${lines.join('\r\n')}\n`);

      const result = await cli(['users', 'import', file]);

      expect(result.status).toBe(1);
      const problems = stderrLines(result);
      expect(
        problems
          .slice(0, -1)
          .map((line) => /line (\d+)/.exec(line)?.[1])
          .sort(),
      ).toEqual(['4', '5', '6', '7', '8'].sort());
      expect(problems.at(-1)).toMatch(/5 line\(s\) .* were not imported/);
      for (const secret of ['AAA', 'BBB', 'CCC', 'DDD', 'EEE', 'colons']) {
        expect(result.stdout + result.stderr).not.toContain(secret);
      }
      expect(result.stdout).toMatch(/imported 2 user/);
      await expect(verify((await passwordHashOf('dave'))!, 'pa:ss:with:colons')).resolves.toBe(
        true,
      );
      await expect(verify((await passwordHashOf('grace'))!, 'secret EEE ')).resolves.toBe(true);
    });

    it('reports progress on stderr for a large file', async () => {
      const file = path.join(workDirectory, 'many.txt');
      const names = Array.from({ length: 120 }, (_, index) => `bulk${index}`);
      fs.writeFileSync(file, names.map((name) => `${name}:pw-${name}`).join('\n'));

      const result = await cli(['users', 'import', file]);

      expect(result.status).toBe(0);
      expect(result.stderr).toMatch(/import progress: 120 of 120 users/);
      expect(result.stdout).toMatch(/imported 120 user/);
      const { rows } = await client.query(
        `SELECT count(*)::int AS n FROM users WHERE username LIKE 'bulk%'`,
      );
      expect(rows[0].n).toBe(120);
    });

    it('reports a file it cannot read', async () => {
      expectOneErrorLine(
        await cli(['users', 'import', path.join(workDirectory, 'missing.txt')]),
        1,
        /cannot read .*missing\.txt: ENOENT/,
      );
    });
  });

  describe('certs', () => {
    let aliceFingerprint: string;

    it('creates the development PKI under DATA_DIR/pki, and keeps it on a second run', async () => {
      const first = await cli(['certs', 'init']);
      const pkiDirectory = path.join(environment.DATA_DIR!, 'pki');
      const caBefore = fs.readFileSync(path.join(pkiDirectory, 'ca.crt'), 'utf8');
      const second = await cli(['certs', 'init']);

      expectSuccess(first);
      expect(first.stdout).toContain(path.join(pkiDirectory, 'server.crt'));
      for (const file of ['ca.crt', 'ca.key', 'server.crt', 'server.key']) {
        expect(fs.existsSync(path.join(pkiDirectory, file))).toBe(true);
      }
      expect(fileMode(path.join(pkiDirectory, 'ca.key'))).toBe(0o600);
      expectSuccess(second);
      expect(fs.readFileSync(path.join(pkiDirectory, 'ca.crt'), 'utf8')).toBe(caBefore);
    });

    it('issues a certificate, writes four files and binds it', async () => {
      const out = path.join(workDirectory, 'alice-out');
      const result = await cli(['certs', 'issue', 'alice', '--out', out, '--certificate-login']);

      expectSuccess(result);
      expect(fs.readdirSync(out).sort()).toEqual(['alice.crt', 'alice.key', 'alice.p12', 'ca.crt']);
      expect(fileMode(path.join(out, 'alice.key'))).toBe(0o600);
      expect(fileMode(path.join(out, 'alice.p12'))).toBe(0o600);
      aliceFingerprint = new X509Certificate(
        fs.readFileSync(path.join(out, 'alice.crt')),
      ).fingerprint256
        .replaceAll(':', '')
        .toLowerCase();
      expect(result.stdout).toContain(aliceFingerprint);
      expect(await listCertificates()).toEqual([
        expect.objectContaining({
          fingerprint: aliceFingerprint,
          username: 'alice',
          state: 'active',
          certificate_login: true,
        }),
      ]);
    });

    it('refuses to issue without --out or for an unknown user', async () => {
      expectOneErrorLine(await cli(['certs', 'issue', 'alice']), 2, /missing --out/);
      expectOneErrorLine(
        await cli(['certs', 'issue', 'nobody', '--out', path.join(workDirectory, 'x')]),
        1,
        /no user named 'nobody'/,
      );
    });

    it('refuses to bind one certificate to a second user', async () => {
      const pem = path.join(workDirectory, 'alice-out', 'alice.crt');

      expectOneErrorLine(await cli(['certs', 'bind', 'bob', pem]), 1, /already bound \(to alice\)/);
    });

    it('binds a certificate from a PEM file', async () => {
      const pkiDirectory = path.join(environment.DATA_DIR!, 'pki');
      const ca = {
        certificatePem: fs.readFileSync(path.join(pkiDirectory, 'ca.crt'), 'utf8'),
        privateKeyPem: fs.readFileSync(path.join(pkiDirectory, 'ca.key'), 'utf8'),
      };
      const issued = await issueClientCertificate(ca, { commonName: 'bob', validDays: 10 });
      const pem = path.join(workDirectory, 'bob.pem');
      fs.writeFileSync(pem, issued.certificatePem);

      expectSuccess(await cli(['certs', 'bind', 'bob', pem]));

      expect(await listCertificates()).toContainEqual(
        expect.objectContaining({
          fingerprint: issued.fingerprint,
          username: 'bob',
          certificate_login: false,
        }),
      );
      const expiring = await listCertificates('--expiring', '30d');
      expect(expiring.map((binding) => binding.username)).toEqual(['bob']);
      expect(await listCertificates('--expiring', '400d')).toHaveLength(2);
    });

    it('refuses a file without a certificate', async () => {
      const notPem = path.join(workDirectory, 'users.txt');

      expectOneErrorLine(
        await cli(['certs', 'bind', 'bob', notPem]),
        1,
        /no PEM or DER certificate/,
      );
      expectOneErrorLine(
        await cli(['certs', 'bind', 'bob', path.join(workDirectory, 'none.pem')]),
        1,
        /cannot read/,
      );
    });

    it('refuses a bad fingerprint and reports an unknown one', async () => {
      expectOneErrorLine(await cli(['certs', 'revoke', 'abc123']), 2, /not a SHA-256 fingerprint/);
      expectOneErrorLine(await cli(['certs', 'unbind', 'zz'.repeat(32)]), 2, /not a SHA-256/);
      expectOneErrorLine(await cli(['certs', 'revoke', '0'.repeat(64)]), 1, /is bound/);
    });

    it('revokes by colon hex and unbinds by base64url', async () => {
      expectSuccess(await cli(['certs', 'revoke', colonHex(aliceFingerprint)]));
      expect(await listCertificates()).toContainEqual(
        expect.objectContaining({ fingerprint: aliceFingerprint, state: 'revoked' }),
      );

      expectSuccess(await cli(['certs', 'unbind', base64url(aliceFingerprint)]));
      const remaining = await listCertificates();
      expect(remaining.map((binding) => binding.username)).toEqual(['bob']);
    });

    it('refuses a malformed --expiring', async () => {
      expectOneErrorLine(await cli(['certs', 'list', '--expiring', 'soon']), 2, /--expiring/);
    });
  });

  describe('keys rotate', () => {
    it('makes a new key active and keeps the previous one published', async () => {
      const first = await cli(['keys', 'rotate']);
      const second = await cli(['keys', 'rotate']);

      expectSuccess(first);
      expectSuccess(second);
      expect(second.stdout).toMatch(/retired/);
      const { rows } = await client.query(
        'SELECT count(*)::int AS n, count(*) FILTER (WHERE retired_at IS NULL)::int AS active ' +
          'FROM signing_keys',
      );
      expect(rows[0]).toEqual({ n: 2, active: 1 });
    });
  });

  it('records every change in admin_actions', async () => {
    const { rows } = await client.query<{ action: string; actor: string }>(
      'SELECT DISTINCT action, actor FROM admin_actions',
    );

    expect(rows.map((row) => row.action).sort()).toEqual(
      [
        'certificate.bind',
        'certificate.issue',
        'certificate.revoke',
        'certificate.unbind',
        'signing_key.rotate',
        'user.create',
        'user.disable',
        'user.enable',
        'user.set_password',
      ].sort(),
    );
    expect(rows.every((row) => row.actor.startsWith('cli:'))).toBe(true);
  });
});

describe('gatehouse CLI on the embedded database', () => {
  let workDirectory: string;
  let dataDirectory: string;
  let environment: NodeJS.ProcessEnv;
  const cli = (args: string[], input?: string): Promise<CliResult> =>
    runCli(args, environment, input);

  beforeAll(() => {
    workDirectory = temporaryDirectory();
    dataDirectory = path.join(workDirectory, 'data');
    environment = cleanEnvironment({ DATA_DIR: dataDirectory });
  });

  afterAll(() => {
    fs.rmSync(workDirectory, { recursive: true, force: true });
  });

  it('tells to run migrate when MIGRATE_ON_START is false and the schema is missing', async () => {
    const result = await runCli(
      ['users', 'list'],
      cleanEnvironment({ DATA_DIR: path.join(workDirectory, 'other'), MIGRATE_ON_START: 'false' }),
    );

    expectOneErrorLine(result, 1, /run `gatehouse migrate`/);
  });

  it('migrates on first use, then works like the server database', async () => {
    const before = await cli(['migrate', 'status', '--json']);
    const added = await cli(['users', 'add', 'carol', '--password-stdin'], 'carol pw\n');
    const after = await cli(['migrate', 'status', '--json']);
    const listed = await cli(['users', 'list', '--json']);

    expect(JSON.parse(before.stdout)).toMatchObject({ up_to_date: false });
    expect(added.status).toBe(0);
    expect(added.stderr).toMatch(/had no schema; applied 1 migration/);
    expect(JSON.parse(after.stdout)).toMatchObject({ up_to_date: true });
    expect((JSON.parse(listed.stdout) as { users: ListedUser[] }).users).toEqual([
      expect.objectContaining({ username: 'carol', has_password: true }),
    ]);
    expect(fileMode(dataDirectory)).toBe(0o700);
    expect(fs.existsSync(path.join(dataDirectory, 'gatehouse.lock'))).toBe(false);
  });

  it('issues a certificate and rotates keys', async () => {
    const out = path.join(workDirectory, 'out');

    expectSuccess(await cli(['certs', 'init']));
    expectSuccess(await cli(['certs', 'issue', 'carol', '--out', out]));
    expectSuccess(await cli(['keys', 'rotate']));

    expect(fs.readdirSync(out)).toHaveLength(4);
    const listed = JSON.parse((await cli(['certs', 'list', '--json'])).stdout);
    expect(listed.certificates).toEqual([expect.objectContaining({ username: 'carol' })]);
  });

  describe('while another process holds the data directory', () => {
    let holder: ChildProcess;

    afterEach(() => {
      holder?.kill();
    });

    it('fails with one line naming the holder', async () => {
      const lockPath = path.join(dataDirectory, 'gatehouse.lock');
      holder = spawn(
        process.execPath,
        [
          '-e',
          `require('fs').writeFileSync(process.argv[1], process.pid + '\\n', { flag: 'wx' });
           process.stdout.write('held\\n');
           setInterval(() => {}, 1000);`,
          lockPath,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise((resolve) => holder.stdout!.once('data', resolve));

      const result = await cli(['users', 'list']);

      expectOneErrorLine(result, 1, new RegExp(`in use by process ${holder.pid}`));
      expect(fs.readFileSync(lockPath, 'utf8').trim()).toBe(String(holder.pid));
      holder.kill();
      await new Promise((resolve) => holder.once('exit', resolve));
      fs.rmSync(lockPath, { force: true });
    });
  });

  it('takes over a lock file left by a process that is gone', async () => {
    const lockPath = path.join(dataDirectory, 'gatehouse.lock');
    const gone = spawnSync(process.execPath, ['-e', '']);
    fs.writeFileSync(lockPath, `${gone.pid}\n`);

    const result = await cli(['users', 'list', '--json']);

    expectSuccess(result);
    expect(JSON.parse(result.stdout).users).toHaveLength(1);
    expect(fs.existsSync(lockPath)).toBe(false);
  });
});

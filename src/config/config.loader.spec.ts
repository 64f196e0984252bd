import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from './config.error';
import { isSecretKey, loadConfig } from './config.loader';

type Environment = Record<string, string | undefined>;

const SERVER = {
  DATABASE_URL: 'postgres://gatehouse@127.0.0.1:5432/gatehouse',
  LIMITER_STORE: 'memory',
  AUDIT_USERNAME_KEY: 'a-key-of-at-least-sixteen-bytes',
};

/** The ConfigError that loading `environment` throws. */
function configError(environment: Environment): ConfigError {
  try {
    loadConfig(environment);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected the configuration to be refused');
}

const secretDirectories: string[] = [];

function secretFile(content: string): string {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-config-'));
  secretDirectories.push(directory);
  const file = path.join(directory, 'secret');
  fs.writeFileSync(file, content, { mode: 0o600 });
  return file;
}

describe('loadConfig', () => {
  afterAll(() => {
    for (const directory of secretDirectories) {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });

  it('applies the documented defaults', () => {
    const config = loadConfig({});

    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8443,
      managementPort: 9000,
      mtlsMode: 'direct',
      certBinding: 'required',
      databaseUrl: undefined,
      limiterStore: 'memory',
      shutdownTimeoutMs: 25_000,
      tokenTtlMs: 15 * 60_000,
      loginMaxFailures: 5,
      loginFailureWindowMs: 15 * 60_000,
      ipLoginLimit: 300,
      ipUserLimit: 10,
      ipFailureBudget: 100,
      hashQueueMax: 64,
      usernameMaxBytes: 256,
      passwordMaxBytes: 1024,
      auditFoldRate: 50,
      auditRetentionDays: 90,
    });
    expect(config.detection.credential_stuffing).toBe('enforce');
    expect(config.detection.password_spraying).toBe('off');
  });

  it('names the cap of a capped duration', () => {
    expect(configError({ TOKEN_TTL: '2h' }).message).toBe('TOKEN_TTL: must be at most 1h');
  });

  it('reads durations, numbers and lists', () => {
    const config = loadConfig({
      LOGIN_FAILURE_WINDOW: '30m',
      TOKEN_TTL: '1h',
      IP_LOGIN_LIMIT: '1000',
      ALLOW_UNSAFE: 'embedded, mtls_off',
      MTLS_MODE: 'off',
    });

    expect(config.loginFailureWindowMs).toBe(30 * 60_000);
    expect(config.tokenTtlMs).toBe(3_600_000);
    expect(config.ipLoginLimit).toBe(1000);
    expect([...config.allowUnsafe].sort()).toEqual(['embedded', 'mtls_off']);
    expect(config.certBinding).toBe('off');
  });

  it.each<[string, Environment]>([
    ['PORT', { PORT: 'https' }],
    ['PORT', { PORT: '70000' }],
    ['MANAGEMENT_PORT', { MANAGEMENT_PORT: '-1' }],
    ['MANAGEMENT_PORT', { PORT: '8443', MANAGEMENT_PORT: '8443' }],
    ['MTLS_MODE', { MTLS_MODE: 'tls' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }],
    ['LOG_FORMAT', { LOG_FORMAT: 'xml' }],
    ['SHUTDOWN_TIMEOUT', { SHUTDOWN_TIMEOUT: '25' }],
    ['TOKEN_TTL', { TOKEN_TTL: '2h' }],
    ['LOGIN_FAILURE_WINDOW', { LOGIN_FAILURE_WINDOW: '0s' }],
    ['LOGIN_MAX_FAILURES', { LOGIN_MAX_FAILURES: '0' }],
    ['IP_LOGIN_LIMIT', { IP_LOGIN_LIMIT: '1.5' }],
    ['IP_FAILURE_BUDGET', { IP_FAILURE_BUDGET: 'lots' }],
    ['HASH_CONCURRENCY', { HASH_CONCURRENCY: '0' }],
    ['PASSWORD_MAX_BYTES', { PASSWORD_MAX_BYTES: '4' }],
    ['AUDIT_FOLD_RATE', { AUDIT_FOLD_RATE: '0' }],
    ['MIGRATE_ON_START', { MIGRATE_ON_START: 'maybe' }],
    ['ALLOW_UNSAFE', { ALLOW_UNSAFE: 'embedded,everything' }],
    ['PROXY_CERT_HEADER', { PROXY_CERT_HEADER: 'apache' }],
    ['CERT_BINDING', { CERT_BINDING: 'sometimes' }],
    ['CERT_BINDING', { MTLS_MODE: 'off', CERT_BINDING: 'required' }],
    ['DETECT_CREDENTIAL_STUFFING', { DETECT_CREDENTIAL_STUFFING: 'always' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://127.0.0.1/gatehouse' }],
    ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
    ['DATABASE_ADMIN_URL', { DATABASE_ADMIN_URL: 'http://127.0.0.1' }],
    ['REDIS_URL', { REDIS_URL: 'http://127.0.0.1:6379' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: '127.0.0.1:7000,nohost' }],
    ['LIMITER_STORE', { LIMITER_STORE: 'redis' }],
    ['LIMITER_STORE', { DATABASE_URL: SERVER.DATABASE_URL, AUDIT_USERNAME_KEY: 'x'.repeat(16) }],
    ['AUDIT_USERNAME_KEY', { DATABASE_URL: SERVER.DATABASE_URL, LIMITER_STORE: 'memory' }],
    ['AUDIT_USERNAME_KEY', { AUDIT_USERNAME_KEY: 'too-short' }],
  ])('refuses a bad %s, naming it', (key, environment) => {
    const error = configError(environment);

    expect(error.key).toBe(key);
    expect(error.message.startsWith(`${key}: `)).toBe(true);
  });

  it('accepts a server database with a memory limiter and a username key', () => {
    const config = loadConfig(SERVER);

    expect(config.databaseUrl).toBe(SERVER.DATABASE_URL);
    expect(config.auditUsernameKey).toBe(SERVER.AUDIT_USERNAME_KEY);
  });

  it('reads secrets from <KEY>_FILE, without the trailing newline', () => {
    const config = loadConfig({
      LIMITER_STORE: 'memory',
      DATABASE_URL_FILE: secretFile(`${SERVER.DATABASE_URL}\n`),
      AUDIT_USERNAME_KEY_FILE: secretFile('a-key-from-a-mounted-secret-file\n'),
      REDIS_URL_FILE: secretFile('redis://127.0.0.1:6379'),
    });

    expect(config.databaseUrl).toBe(SERVER.DATABASE_URL);
    expect(config.auditUsernameKey).toBe('a-key-from-a-mounted-secret-file');
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
  });

  it('refuses a secret given both directly and as a file', () => {
    const error = configError({
      ...SERVER,
      AUDIT_USERNAME_KEY_FILE: secretFile('another-key-of-sixteen-bytes'),
    });

    expect(error.key).toBe('AUDIT_USERNAME_KEY');
  });

  it('names the _FILE key when its file cannot be read', () => {
    const missing = path.join(os.tmpdir(), 'gatehouse-config-missing', 'secret');

    expect(configError({ DATABASE_URL_FILE: missing }).key).toBe('DATABASE_URL_FILE');
  });

  it.each<[string, Environment, string]>([
    ['DATABASE_URL', { DATABASE_URL: 'mysql://admin:hunter2-secret@127.0.0.1/db' }, 'hunter2'],
    ['DATABASE_URL', { DATABASE_URL: 'hunter2-secret' }, 'hunter2'],
    ['DATABASE_ADMIN_URL', { DATABASE_ADMIN_URL: 'ftp://u:hunter2-secret@h' }, 'hunter2'],
    ['REDIS_URL', { REDIS_URL: 'http://:hunter2-secret@127.0.0.1' }, 'hunter2'],
    ['AUDIT_USERNAME_KEY', { AUDIT_USERNAME_KEY: 'hunter2' }, 'hunter2'],
  ])('never puts the value of the secret %s in its message', (_key, environment, secret) => {
    const error = configError(environment);

    expect(error.message).not.toContain(secret);
    expect(String(error.stack)).not.toContain(secret);
  });

  it('never puts the content of a secret file in its message', () => {
    const error = configError({ DATABASE_URL_FILE: secretFile('mysql://u:hunter2-secret@h/db') });

    expect(error.key).toBe('DATABASE_URL');
    expect(error.message).not.toContain('hunter2');
  });
});

describe('isSecretKey', () => {
  it('marks the secrets and their _FILE forms, and nothing else', () => {
    expect(isSecretKey('DATABASE_URL')).toBe(true);
    expect(isSecretKey('AUDIT_USERNAME_KEY_FILE')).toBe(true);
    expect(isSecretKey('REDIS_URL')).toBe(true);
    expect(isSecretKey('PORT')).toBe(false);
  });
});

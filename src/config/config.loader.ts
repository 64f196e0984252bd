import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AppConfig,
  CertBinding,
  DETECTION_RULES,
  DetectionMode,
  DetectionRule,
  DetectionThresholds,
  SECRET_KEYS,
  UnsafeAllowance,
  defaultHashConcurrency,
} from './app-config';
import { ConfigError } from './config.error';
import { formatDuration, parseDuration } from './duration';

type Environment = Record<string, string | undefined>;

const UNSAFE_ALLOWANCES: UnsafeAllowance[] = [
  'embedded',
  'mtls_off',
  'proxy_ip_trust',
  'missing_tls',
];

/** Reads one key, preferring `<KEY>_FILE` for secrets; never echoes a secret's value. */
class EnvironmentReader {
  constructor(private readonly environment: Environment) {}

  text(key: string, fallback?: string): string | undefined {
    const fileKey = `${key}_FILE`;
    const filePath = this.environment[fileKey];
    const direct = this.environment[key];
    if (filePath !== undefined && filePath !== '') {
      if (direct !== undefined && direct !== '') {
        throw new ConfigError(key, `set either ${key} or ${fileKey}, not both`);
      }
      return this.readSecretFile(fileKey, filePath);
    }
    return direct === undefined || direct === '' ? fallback : direct.trim();
  }

  required(key: string, fallback: string): string {
    return this.text(key, fallback) ?? fallback;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const value = this.required(key, fallback);
    if (!(allowed as readonly string[]).includes(value)) {
      throw new ConfigError(key, `must be one of ${allowed.join(', ')}`);
    }
    return value as T;
  }

  integer(key: string, fallback: number, minimum: number, maximum: number): number {
    const value = this.text(key);
    if (value === undefined) {
      return fallback;
    }
    if (!/^\d{1,10}$/.test(value)) {
      throw new ConfigError(key, 'must be a whole number');
    }
    const parsed = Number(value);
    if (parsed < minimum || parsed > maximum) {
      throw new ConfigError(key, `must be between ${minimum} and ${maximum}`);
    }
    return parsed;
  }

  ratio(key: string, fallback: number): number {
    const value = this.text(key);
    if (value === undefined) {
      return fallback;
    }
    const parsed = Number(value);
    if (!/^(0|1|0?\.\d{1,6}|1\.0{1,6})$/.test(value) || parsed <= 0) {
      throw new ConfigError(key, 'must be a number above 0 and at most 1');
    }
    return parsed;
  }

  duration(key: string, fallback: string, maximumMs = Number.MAX_SAFE_INTEGER): number {
    const value = this.required(key, fallback);
    let parsed: number;
    try {
      parsed = parseDuration(value);
    } catch (error) {
      throw new ConfigError(key, (error as Error).message);
    }
    if (parsed <= 0) {
      throw new ConfigError(key, 'must be longer than zero');
    }
    if (parsed > maximumMs) {
      throw new ConfigError(key, `must be at most ${formatDuration(maximumMs)}`);
    }
    return parsed;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.text(key);
    if (value === undefined) {
      return fallback;
    }
    if (['true', '1', 'yes'].includes(value.toLowerCase())) {
      return true;
    }
    if (['false', '0', 'no'].includes(value.toLowerCase())) {
      return false;
    }
    throw new ConfigError(key, 'must be true or false');
  }

  port(key: string, fallback: number): number {
    return this.integer(key, fallback, 0, 65535);
  }

  private readSecretFile(fileKey: string, filePath: string): string {
    try {
      return fs.readFileSync(filePath, 'utf8').replace(/\r?\n$/, '');
    } catch {
      throw new ConfigError(fileKey, 'cannot read the file it names');
    }
  }
}

function readUrl(reader: EnvironmentReader, key: string, protocols: string[]): string | undefined {
  const value = reader.text(key);
  if (value === undefined) {
    return undefined;
  }
  let protocol: string;
  try {
    protocol = new URL(value).protocol;
  } catch {
    throw new ConfigError(key, 'is not a valid URL');
  }
  if (!protocols.includes(protocol)) {
    throw new ConfigError(key, `must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
  }
  return value;
}

function readAllowUnsafe(reader: EnvironmentReader): Set<UnsafeAllowance> {
  const entries = (reader.text('ALLOW_UNSAFE') ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  for (const entry of entries) {
    if (!(UNSAFE_ALLOWANCES as string[]).includes(entry)) {
      throw new ConfigError(
        'ALLOW_UNSAFE',
        `unknown entry; allowed: ${UNSAFE_ALLOWANCES.join(', ')}`,
      );
    }
  }
  return new Set(entries as UnsafeAllowance[]);
}

function readDetection(reader: EnvironmentReader): Record<DetectionRule, DetectionMode> {
  const modes: DetectionMode[] = ['off', 'monitor', 'enforce'];
  const defaults: Record<DetectionRule, DetectionMode> = {
    credential_stuffing: 'enforce',
    distributed_brute_force: 'monitor',
    password_spraying: 'off',
    shared_certificate: 'monitor',
    success_after_failures: 'monitor',
    certificate_lockouts: 'monitor',
  };
  const result = { ...defaults };
  for (const rule of DETECTION_RULES) {
    result[rule] = reader.oneOf(`DETECT_${rule.toUpperCase()}`, modes, defaults[rule]);
  }
  return result;
}

function readDetectionThresholds(reader: EnvironmentReader): DetectionThresholds {
  return {
    windowMs: reader.duration('DETECT_WINDOW', '10m', 86_400_000),
    stuffingMinUsernames: reader.integer('DETECT_STUFFING_MIN_USERNAMES', 20, 2, 1_000_000),
    stuffingFailureRatio: reader.ratio('DETECT_STUFFING_FAILURE_RATIO', 0.8),
    bruteForceMinSources: reader.integer('DETECT_BRUTE_FORCE_MIN_SOURCES', 10, 2, 1_000_000),
    bruteForceMinFailures: reader.integer('DETECT_BRUTE_FORCE_MIN_FAILURES', 20, 1, 1_000_000),
    sprayingMinUsernames: reader.integer('DETECT_SPRAYING_MIN_USERNAMES', 10, 2, 1_000_000),
    sharedCertificateMinUsernames: reader.integer('DETECT_SHARED_CERT_MIN_USERNAMES', 3, 2, 10_000),
    successAfterFailures: reader.integer('DETECT_SUCCESS_AFTER_MIN_FAILURES', 5, 1, 1_000_000),
    certificateLockoutsMin: reader.integer('DETECT_CERT_LOCKOUTS_MIN', 3, 1, 1_000_000),
  };
}

function readCertBinding(reader: EnvironmentReader, mtlsMode: string): CertBinding {
  if (mtlsMode === 'off') {
    const value = reader.oneOf('CERT_BINDING', ['required', 'optional', 'off'] as const, 'off');
    if (value !== 'off') {
      throw new ConfigError('CERT_BINDING', 'must be off when MTLS_MODE is off');
    }
    return 'off';
  }
  return reader.oneOf('CERT_BINDING', ['required', 'optional', 'off'] as const, 'required');
}

/**
 * Validates the environment into an AppConfig. Throws ConfigError naming the first bad key.
 * Production guard rails are applied separately, at start, by `assertProductionSafety`.
 */
export function loadConfig(environment: Environment = process.env): AppConfig {
  const reader = new EnvironmentReader(environment);
  const nodeEnv = reader.required('NODE_ENV', 'development');
  const mtlsMode = reader.oneOf('MTLS_MODE', ['direct', 'proxy', 'off'] as const, 'direct');
  const databaseUrl = readUrl(reader, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const redisUrl = readUrl(reader, 'REDIS_URL', ['redis:', 'rediss:', 'redis-sentinel:']);
  const redisClusterNodes = (reader.text('REDIS_CLUSTER_NODES') ?? '')
    .split(',')
    .map((node) => node.trim())
    .filter((node) => node !== '');
  for (const node of redisClusterNodes) {
    if (!/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(node)) {
      throw new ConfigError('REDIS_CLUSTER_NODES', 'entries must be host:port');
    }
  }
  const port = reader.port('PORT', 8443);
  const managementPort = reader.port('MANAGEMENT_PORT', 9000);
  if (port !== 0 && port === managementPort) {
    throw new ConfigError('MANAGEMENT_PORT', 'must differ from PORT');
  }
  const hasRedis = redisUrl !== undefined || redisClusterNodes.length > 0;
  const limiterStore = reader.oneOf(
    'LIMITER_STORE',
    ['redis', 'memory'] as const,
    hasRedis ? 'redis' : 'memory',
  );
  if (limiterStore === 'redis' && !hasRedis) {
    throw new ConfigError(
      'LIMITER_STORE',
      'is redis but neither REDIS_URL nor REDIS_CLUSTER_NODES is set',
    );
  }
  if (databaseUrl !== undefined && !hasRedis && reader.text('LIMITER_STORE') !== 'memory') {
    throw new ConfigError(
      'LIMITER_STORE',
      'DATABASE_URL is set without REDIS_URL: set LIMITER_STORE=memory to accept per-process ' +
        'limits',
    );
  }
  const auditUsernameKey = reader.text('AUDIT_USERNAME_KEY');
  if (databaseUrl !== undefined && auditUsernameKey === undefined) {
    throw new ConfigError('AUDIT_USERNAME_KEY', 'is required when DATABASE_URL is set');
  }
  if (auditUsernameKey !== undefined && Buffer.byteLength(auditUsernameKey) < 16) {
    throw new ConfigError('AUDIT_USERNAME_KEY', 'must be at least 16 bytes');
  }
  const loginFailureWindowMs = reader.duration('LOGIN_FAILURE_WINDOW', '15m');
  const limiterKeyPrefix = reader.required('LIMITER_KEY_PREFIX', 'gatehouse:limiter:');
  // Braces would form a Redis Cluster hash tag and pull every key into one slot.
  if (!/^[\x21-\x7a\x7c\x7e]{1,100}$/.test(limiterKeyPrefix)) {
    throw new ConfigError(
      'LIMITER_KEY_PREFIX',
      'must be 1 to 100 printable characters without spaces or braces',
    );
  }

  return {
    host: reader.required('HOST', '127.0.0.1'),
    port,
    managementHost: reader.required('MANAGEMENT_HOST', '127.0.0.1'),
    managementPort,
    dataDir: path.resolve(reader.required('DATA_DIR', './data')),
    nodeEnv,
    production: nodeEnv === 'production',
    logLevel: reader.oneOf(
      'LOG_LEVEL',
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
      'info',
    ),
    logFormat: reader.oneOf('LOG_FORMAT', ['json', 'pretty'] as const, 'json'),
    shutdownTimeoutMs: reader.duration('SHUTDOWN_TIMEOUT', '25s'),
    shutdownDrainDelayMs: reader.duration('SHUTDOWN_DRAIN_DELAY', '5s'),
    migrateOnStart: reader.boolean('MIGRATE_ON_START', true),
    allowUnsafe: readAllowUnsafe(reader),
    instanceId:
      reader.text('INSTANCE_ID') ??
      `${os.hostname()}-${process.pid}-${crypto.randomBytes(3).toString('hex')}`,

    databaseUrl,
    databaseAdminUrl: readUrl(reader, 'DATABASE_ADMIN_URL', ['postgres:', 'postgresql:']),
    redisUrl,
    redisClusterNodes,

    mtlsMode,
    tlsCertFile: reader.text('TLS_CERT_FILE'),
    tlsKeyFile: reader.text('TLS_KEY_FILE'),
    tlsCaFile: reader.text('TLS_CA_FILE'),
    requireClientAuthEku: reader.boolean('REQUIRE_CLIENT_AUTH_EKU', false),
    trustedProxies: reader.required('TRUSTED_PROXIES', ''),
    trustedProxyCerts: reader.required('TRUSTED_PROXY_CERTS', ''),
    proxyCertHeader: reader.oneOf(
      'PROXY_CERT_HEADER',
      ['nginx', 'envoy', 'rfc9440'] as const,
      'nginx',
    ),
    certBinding: readCertBinding(reader, mtlsMode),

    tokenIssuer: reader.required('TOKEN_ISSUER', 'gatehouse'),
    tokenAudience: reader.required('TOKEN_AUDIENCE', 'gatehouse'),
    tokenTtlMs: reader.duration('TOKEN_TTL', '15m', 3_600_000),

    loginMaxFailures: reader.integer('LOGIN_MAX_FAILURES', 5, 1, 1000),
    loginFailureWindowMs,
    lockoutBaseMs: reader.duration('LOCKOUT_BASE', '1m'),
    lockoutMaxMs: reader.duration('LOCKOUT_MAX', '15m'),
    familiarSourceTtlMs: reader.duration('FAMILIAR_SOURCE_TTL', '30d'),
    ipLoginLimit: reader.integer('IP_LOGIN_LIMIT', 300, 1, 1_000_000),
    ipLoginWindowMs: reader.duration('IP_LOGIN_WINDOW', '1m'),
    ipUserLimit: reader.integer('IP_USER_LIMIT', 10, 1, 1_000_000),
    ipUserWindowMs: reader.duration('IP_USER_WINDOW', '15m'),
    certLoginLimit: reader.integer('CERT_LOGIN_LIMIT', 30, 1, 1_000_000),
    certLoginWindowMs: reader.duration('CERT_LOGIN_WINDOW', '15m'),
    ipFailureBudget: reader.integer('IP_FAILURE_BUDGET', 100, 1, 1_000_000),
    ipFailureWindowMs: reader.duration('IP_FAILURE_WINDOW', '1d'),
    ipExemptCidrs: reader.required('IP_EXEMPT_CIDRS', ''),
    hashConcurrency: reader.integer('HASH_CONCURRENCY', defaultHashConcurrency(), 1, 256),
    hashQueueMax: reader.integer('HASH_QUEUE_MAX', 64, 0, 100_000),
    usernameMaxBytes: reader.integer('USERNAME_MAX_BYTES', 256, 1, 4096),
    passwordMaxBytes: reader.integer('PASSWORD_MAX_BYTES', 1024, 8, 65536),
    limiterStore,
    limiterKeyPrefix,
    unlockLimit: reader.integer('UNLOCK_LIMIT', 10, 1, 10_000),

    auditRetentionDays: reader.integer('AUDIT_RETENTION_DAYS', 90, 1, 36_500),
    auditFoldRate: reader.integer('AUDIT_FOLD_RATE', 50, 1, 1_000_000),
    auditUsernameKey,
    auditFlushIntervalMs: reader.duration('AUDIT_FLUSH_INTERVAL', '50ms', 10_000),
    auditBacklogMax: reader.integer('AUDIT_BACKLOG_MAX', 50_000, 100, 10_000_000),
    detection: readDetection(reader),
    detectionIntervalMs: reader.duration('DETECT_INTERVAL', '10s'),
    detectionBlockMs: reader.duration('DETECT_BLOCK_DURATION', '15m'),
    detectionThresholds: readDetectionThresholds(reader),
  };
}

/** The names of keys that hold secrets, for redaction in anything printed. */
export function isSecretKey(key: string): boolean {
  return (SECRET_KEYS as readonly string[]).includes(key.replace(/_FILE$/, ''));
}

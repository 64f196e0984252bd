import * as os from 'node:os';
import * as path from 'node:path';

export type MtlsMode = 'direct' | 'proxy' | 'off';
export type ProxyCertHeader = 'nginx' | 'envoy' | 'rfc9440';
export type CertBinding = 'required' | 'optional' | 'off';
export type LimiterStoreKind = 'redis' | 'memory';
export type DetectionMode = 'off' | 'monitor' | 'enforce';
export type UnsafeAllowance = 'embedded' | 'mtls_off' | 'proxy_ip_trust' | 'missing_tls';
export type LogFormat = 'json' | 'pretty';

export const DETECTION_RULES = [
  'credential_stuffing',
  'distributed_brute_force',
  'password_spraying',
  'shared_certificate',
  'success_after_failures',
  'certificate_lockouts',
] as const;
export type DetectionRule = (typeof DETECTION_RULES)[number];

/** How much evidence each detection rule needs before it raises a finding. */
export interface DetectionThresholds {
  /** DETECT_WINDOW: how far back each evaluation looks, and the bucket of an incident. */
  windowMs: number;
  /** DETECT_STUFFING_MIN_USERNAMES: distinct usernames failed from one source. */
  stuffingMinUsernames: number;
  /** DETECT_STUFFING_FAILURE_RATIO: share of that source's attempts that failed. */
  stuffingFailureRatio: number;
  /** DETECT_BRUTE_FORCE_MIN_SOURCES: distinct sources failing on one username. */
  bruteForceMinSources: number;
  /** DETECT_BRUTE_FORCE_MIN_FAILURES: failures on that username. */
  bruteForceMinFailures: number;
  /** DETECT_SPRAYING_MIN_USERNAMES: distinct usernames tried with one (keyed-hash) password. */
  sprayingMinUsernames: number;
  /** DETECT_SHARED_CERT_MIN_USERNAMES: distinct usernames presented with one certificate. */
  sharedCertificateMinUsernames: number;
  /** DETECT_SUCCESS_AFTER_MIN_FAILURES: failures on an account before a reported success. */
  successAfterFailures: number;
  /** DETECT_CERT_LOCKOUTS_MIN: lockouts of logins presenting one certificate. */
  certificateLockoutsMin: number;
}

/** The whole configuration, validated once at boot by `loadConfig`. Durations are milliseconds. */
export interface AppConfig {
  host: string;
  port: number;
  managementHost: string;
  managementPort: number;
  dataDir: string;
  nodeEnv: string;
  production: boolean;
  logLevel: string;
  logFormat: LogFormat;
  shutdownTimeoutMs: number;
  /** How long a draining replica keeps answering before it stops accepting (load balancer lag). */
  shutdownDrainDelayMs: number;
  migrateOnStart: boolean;
  allowUnsafe: Set<UnsafeAllowance>;
  instanceId: string;

  /** Secret. Unset: the embedded database under dataDir. */
  databaseUrl?: string;
  /** Secret. Owner role for migrations and retention. */
  databaseAdminUrl?: string;
  /** Secret. */
  redisUrl?: string;
  redisClusterNodes: string[];

  mtlsMode: MtlsMode;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsCaFile?: string;
  requireClientAuthEku: boolean;
  trustedProxies: string;
  trustedProxyCerts: string;
  proxyCertHeader: ProxyCertHeader;
  certBinding: CertBinding;

  tokenIssuer: string;
  tokenAudience: string;
  tokenTtlMs: number;

  loginMaxFailures: number;
  loginFailureWindowMs: number;
  lockoutBaseMs: number;
  lockoutMaxMs: number;
  familiarSourceTtlMs: number;
  ipLoginLimit: number;
  ipLoginWindowMs: number;
  ipUserLimit: number;
  ipUserWindowMs: number;
  certLoginLimit: number;
  certLoginWindowMs: number;
  ipFailureBudget: number;
  ipFailureWindowMs: number;
  ipExemptCidrs: string;
  hashConcurrency: number;
  hashQueueMax: number;
  usernameMaxBytes: number;
  passwordMaxBytes: number;
  limiterStore: LimiterStoreKind;
  /** Put in front of every limiter key in Redis, so several deployments can share one Redis. */
  limiterKeyPrefix: string;
  /** Admin unlocks allowed per actor per minute. */
  unlockLimit: number;

  auditRetentionDays: number;
  auditFoldRate: number;
  /** Secret. Keys the hashes of usernames that resolve to no user. */
  auditUsernameKey?: string;
  auditFlushIntervalMs: number;
  auditBacklogMax: number;
  detection: Record<DetectionRule, DetectionMode>;
  detectionIntervalMs: number;
  detectionBlockMs: number;
  detectionThresholds: DetectionThresholds;
}

/** Keys whose values are secrets: accepted as `<KEY>_FILE` too, and never printed. */
export const SECRET_KEYS = [
  'DATABASE_URL',
  'DATABASE_ADMIN_URL',
  'REDIS_URL',
  'AUDIT_USERNAME_KEY',
] as const;

export const DEFAULT_DATA_DIR = path.resolve('data');

export function defaultHashConcurrency(): number {
  return Math.max(1, os.availableParallelism());
}

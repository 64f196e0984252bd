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

import { createHash } from 'node:crypto';
import type { AttemptKeys, LimitName, LimiterSettings, SourceTier } from './limiter.types';

/**
 * Which limits apply to one attempt, and under which keys, shared by the Redis and memory stores
 * so that both decide alike.
 *
 * Keys are grouped by a Redis Cluster hash tag, so that every key a group's script touches lives
 * in one slot: `{ip:<address or prefix>}`, `{c:<fingerprint>}` and `{u:<username hash>}`.
 *
 * IPv6 prefixes: the /64 and the /48 each get IP_LOGIN_LIMIT per IP_LOGIN_WINDOW, the limit of one
 * address. A /64 is what one subscriber is handed, and a /48 is a common allocation for one
 * customer, so either is one source that can otherwise rotate through 2^64 or 2^80 addresses;
 * a site that puts many users behind one /48 belongs in IP_EXEMPT_CIDRS. For the same reason the
 * IP failure budget of a native IPv6 client is kept per /64 rather than per address.
 */

export const TIERS: readonly SourceTier[] = ['familiar', 'unfamiliar'];

/** The order in which limits are checked; the first refusing limit names the answer. */
export const LIMIT_ORDER: readonly LimitName[] = [
  'ip',
  'ip_prefix_64',
  'ip_prefix_48',
  'ip_user',
  'certificate',
  'ip_failure_budget',
  'account',
];

export interface PlannedLimit {
  name: LimitName;
  key: string;
  limit: number;
  windowMs: number;
  /** Failure budgets are given back on `neutral` and `success`; request counts never are. */
  failureBudget: boolean;
}

export interface PlannedBlock {
  subject: string;
  key: string;
}

export interface AccountKeys {
  windowKey: string;
  lockKey: string;
  lockoutCountKey: string;
}

export interface PlannedAccount extends AccountKeys {
  limit: number;
  windowMs: number;
}

/** The keys of one hash tag, checked and reserved together by one script call. */
export interface KeyGroup {
  blocks: PlannedBlock[];
  limits: PlannedLimit[];
  account?: PlannedAccount;
}

/** Groups in the fixed order address, prefixes, certificate, username. */
export interface AttemptPlan {
  groups: KeyGroup[];
}

const IP_PATTERN = /^[0-9a-f.:]{2,45}$/i;
const PREFIX_PATTERN = /^[0-9a-f.:]{2,45}\/(48|64)$/i;
const FINGERPRINT_PATTERN = /^[0-9a-f]{64}$/;

/** Usernames enter key names only as a truncated SHA-256: bounded, and no raw input in Redis. */
export function hashUsername(normalizedUsername: string): string {
  return createHash('sha256').update(normalizedUsername, 'utf8').digest('hex').slice(0, 32);
}

/** An address or an IPv6 prefix as written in AttemptKeys, checked before it becomes a key. */
export function sourceTag(subject: string): string {
  if (!IP_PATTERN.test(subject) && !PREFIX_PATTERN.test(subject)) {
    throw new Error('limiter: a source must be a canonical address or an IPv6 /64 or /48 prefix');
  }
  return `{ip:${subject.toLowerCase()}}`;
}

export function blockKey(subject: string): string {
  return `${sourceTag(subject)}:block`;
}

function userTag(normalizedUsername: string): string {
  return `{u:${hashUsername(normalizedUsername)}}`;
}

export function accountKeys(normalizedUsername: string, tier: SourceTier): AccountKeys {
  const tag = userTag(normalizedUsername);
  return {
    windowKey: `${tag}:failures:${tier}`,
    lockKey: `${tag}:lock:${tier}`,
    lockoutCountKey: `${tag}:lockouts:${tier}`,
  };
}

export function unlockMarkerKey(normalizedUsername: string): string {
  return `${userTag(normalizedUsername)}:unlocked`;
}

export function familiarSourceKey(normalizedUsername: string, clientIp: string): string {
  if (!IP_PATTERN.test(clientIp)) {
    throw new Error('limiter: a familiar source must be a canonical address');
  }
  return `${userTag(normalizedUsername)}:seen:${clientIp.toLowerCase()}`;
}

function prefixLimitName(prefix: string): LimitName {
  const match = PREFIX_PATTERN.exec(prefix);
  if (!match) {
    throw new Error('limiter: an address prefix must be an IPv6 /64 or /48');
  }
  return match[1] === '48' ? 'ip_prefix_48' : 'ip_prefix_64';
}

function certificateTag(fingerprint: string): string {
  const hex = fingerprint.toLowerCase().replace(/:/g, '');
  if (!FINGERPRINT_PATTERN.test(hex)) {
    throw new Error('limiter: a certificate fingerprint must be SHA-256 hex');
  }
  return `{c:${hex}}`;
}

/** The subject whose IP failure budget the attempt draws on: the /64 for native IPv6. */
export function failureBudgetSubject(keys: AttemptKeys): string {
  return keys.ipPrefixes.find((prefix) => prefix.endsWith('/64')) ?? keys.clientIp;
}

export function failureBudgetKey(keys: AttemptKeys): string {
  return `${sourceTag(failureBudgetSubject(keys))}:failures`;
}

function addressGroup(keys: AttemptKeys, settings: LimiterSettings): KeyGroup {
  const tag = sourceTag(keys.clientIp);
  const limits: PlannedLimit[] = [
    {
      name: 'ip_user',
      key: `${tag}:user:${hashUsername(keys.normalizedUsername)}`,
      limit: settings.ipUserLimit,
      windowMs: settings.ipUserWindowMs,
      failureBudget: false,
    },
  ];
  if (!keys.ipExempt) {
    limits.push({
      name: 'ip',
      key: `${tag}:requests`,
      limit: settings.ipLoginLimit,
      windowMs: settings.ipLoginWindowMs,
      failureBudget: false,
    });
  }
  return { blocks: [{ subject: keys.clientIp, key: blockKey(keys.clientIp) }], limits };
}

function prefixGroup(prefix: string, keys: AttemptKeys, settings: LimiterSettings): KeyGroup {
  const tag = sourceTag(prefix);
  const limits: PlannedLimit[] = [];
  if (!keys.ipExempt) {
    limits.push({
      name: prefixLimitName(prefix),
      key: `${tag}:requests`,
      limit: settings.ipLoginLimit,
      windowMs: settings.ipLoginWindowMs,
      failureBudget: false,
    });
  }
  return { blocks: [{ subject: prefix, key: blockKey(prefix) }], limits };
}

function failureBudgetLimit(keys: AttemptKeys, settings: LimiterSettings): PlannedLimit {
  return {
    name: 'ip_failure_budget',
    key: failureBudgetKey(keys),
    limit: settings.ipFailureBudget,
    windowMs: settings.ipFailureWindowMs,
    failureBudget: true,
  };
}

function certificateGroup(fingerprint: string, settings: LimiterSettings): KeyGroup {
  const limit: PlannedLimit = {
    name: 'certificate',
    key: `${certificateTag(fingerprint)}:requests`,
    limit: settings.certLoginLimit,
    windowMs: settings.certLoginWindowMs,
    failureBudget: false,
  };
  return { blocks: [], limits: [limit] };
}

function usernameGroup(keys: AttemptKeys, settings: LimiterSettings): KeyGroup {
  const account: PlannedAccount = {
    ...accountKeys(keys.normalizedUsername, keys.tier),
    limit: settings.loginMaxFailures,
    windowMs: settings.loginFailureWindowMs,
  };
  return { blocks: [], limits: [], account };
}

function byLimitOrder(a: PlannedLimit, b: PlannedLimit): number {
  return LIMIT_ORDER.indexOf(a.name) - LIMIT_ORDER.indexOf(b.name);
}

/** Every limit and block that applies to an attempt, grouped by hash tag. */
export function planAttempt(keys: AttemptKeys, settings: LimiterSettings): AttemptPlan {
  const address = addressGroup(keys, settings);
  const prefixes = keys.ipPrefixes.map((prefix) => prefixGroup(prefix, keys, settings));
  const sources = [address, ...prefixes];

  if (!keys.ipExempt) {
    const subject = failureBudgetSubject(keys);
    const index = subject === keys.clientIp ? 0 : 1 + keys.ipPrefixes.indexOf(subject);
    sources[index].limits.push(failureBudgetLimit(keys, settings));
  }

  const groups = [...sources];
  if (keys.certificateFingerprint) {
    groups.push(certificateGroup(keys.certificateFingerprint, settings));
  }
  groups.push(usernameGroup(keys, settings));

  for (const group of groups) {
    group.limits.sort(byLimitOrder);
  }
  return { groups };
}

/** The whole plan as one group, for stores that decide everything in one atomic step. */
export function flattenPlan(plan: AttemptPlan): KeyGroup {
  const blocks = plan.groups.flatMap((group) => group.blocks);
  const limits = plan.groups.flatMap((group) => group.limits).sort(byLimitOrder);
  const account = plan.groups.find((group) => group.account)?.account;
  return { blocks, limits, account };
}

/** Lockout length for the n-th lockout in a row: LOCKOUT_BASE doubled, up to LOCKOUT_MAX. */
export function lockoutDurationMs(repeats: number, settings: LimiterSettings): number {
  const grown = settings.lockoutBaseMs * 2 ** Math.max(0, repeats - 1);
  return Math.min(grown, settings.lockoutMaxMs);
}

/** The repeat counter forgets after four times LOCKOUT_MAX without a new lockout. */
export function lockoutMemoryMs(settings: LimiterSettings): number {
  return settings.lockoutMaxMs * 4;
}

export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

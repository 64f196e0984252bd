/**
 * The limiter decides one login attempt in one atomic step: every limit that applies to the
 * attempt is checked and, only when all of them have room, a slot is reserved in each.
 */

/** Which budget of an account an attempt draws on (CONTRACT.md, "Limits"). */
export type SourceTier = 'familiar' | 'unfamiliar';

export interface AttemptKeys {
  /** Canonical client address (IPv4 dotted, or IPv6 compressed). */
  clientIp: string;
  /** For native IPv6 only: the /64 and /48 prefixes, e.g. `2001:db8:1:2::/64`. Empty for IPv4. */
  ipPrefixes: string[];
  /** Normalised username; the account may or may not exist. */
  normalizedUsername: string;
  /** SHA-256 hex fingerprint of the presented client certificate, when there is one. */
  certificateFingerprint?: string;
  tier: SourceTier;
  /** Address is in IP_EXEMPT_CIDRS: per-IP limits and the IP failure budget do not apply. */
  ipExempt: boolean;
}

export type LimiterRefusal =
  | { allowed: false; reason: 'blocked'; subject: string; retryAfterSeconds: number }
  | { allowed: false; reason: 'throttled'; limit: LimitName; retryAfterSeconds: number }
  | { allowed: false; reason: 'locked'; retryAfterSeconds: number; lockoutStarted: boolean };

export type LimiterDecision = { allowed: true; reservation: Reservation } | LimiterRefusal;

export type LimitName =
  | 'ip'
  | 'ip_prefix_64'
  | 'ip_prefix_48'
  | 'ip_user'
  | 'certificate'
  | 'ip_failure_budget'
  | 'account';

/** What a reservation must remember so that its slots can be settled later. */
export interface Reservation {
  id: string;
  keys: AttemptKeys;
  /**
   * When the store took the reservation, in the store's own clock (Redis `TIME` for Redis). A
   * success clears the tier's failures up to this instant only, so guesses that were already in
   * flight when the owner logged in stay counted.
   */
  reservedAtMs?: number;
}

/** How an attempt that held a reservation ended, for the failure budgets. */
export type SettleOutcome =
  /** bad_password or unknown_user: the reserved failure slots stay spent. */
  | 'failure'
  /** success: the reservation is given back and the account's counters for this tier reset. */
  | 'success'
  /** anything else after the reservation (disabled, certificate refusals): slots given back. */
  | 'neutral';

export interface LimiterSettings {
  loginMaxFailures: number;
  loginFailureWindowMs: number;
  lockoutBaseMs: number;
  lockoutMaxMs: number;
  ipLoginLimit: number;
  ipLoginWindowMs: number;
  ipUserLimit: number;
  ipUserWindowMs: number;
  certLoginLimit: number;
  certLoginWindowMs: number;
  ipFailureBudget: number;
  ipFailureWindowMs: number;
  familiarSourceTtlMs: number;
}

/** Storage of limiter state: Redis (single, Sentinel, Cluster) or this process's memory. */
export interface LimiterStore {
  reserve(keys: AttemptKeys): Promise<LimiterDecision>;
  settle(reservation: Reservation, outcome: SettleOutcome): Promise<void>;
  /** Remember that `clientIp` logged in to the account, for FAMILIAR_SOURCE_TTL. */
  rememberFamiliarSource(normalizedUsername: string, clientIp: string): Promise<void>;
  isFamiliarSource(normalizedUsername: string, clientIp: string): Promise<boolean>;
  /** Clear lockouts; refills the failure window at most once per LOGIN_FAILURE_WINDOW. */
  unlock(normalizedUsername: string): Promise<{ refilled: boolean }>;
  /**
   * Block a source (an address or an IPv6 prefix as written in AttemptKeys) for a while, for
   * enforced detection findings. `reserve` checks blocks first and answers `blocked`.
   */
  block(subject: string, durationMs: number): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

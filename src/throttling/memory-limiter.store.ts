import { randomUUID } from 'node:crypto';
import {
  accountKeys,
  blockKey,
  failureBudgetKey,
  familiarSourceKey,
  flattenPlan,
  lockoutDurationMs,
  lockoutMemoryMs,
  planAttempt,
  retryAfterSeconds,
  TIERS,
  unlockMarkerKey,
  type PlannedAccount,
  type PlannedLimit,
} from './limiter-plan';
import { LimiterUnavailableError } from './limiter.errors';
import type {
  AttemptKeys,
  LimiterDecision,
  LimiterSettings,
  LimiterStore,
  Reservation,
  SettleOutcome,
} from './limiter.types';

interface LogEntry {
  id: string;
  at: number;
}

interface SlidingLog {
  kind: 'log';
  windowMs: number;
  entries: LogEntry[];
}

interface ExpiringValue {
  kind: 'value';
  value: number;
  expiresAt: number;
}

type StoredEntry = SlidingLog | ExpiringValue;

export interface MemoryLimiterStoreOptions {
  /** Milliseconds since the epoch; tests inject a fake clock. */
  now?: () => number;
  /** Most keys held at once. Default 100 000. */
  maxKeys?: number;
}

const SWEEP_INTERVAL_MS = 60_000;
const FULL_SWEEP_MIN_INTERVAL_MS = 1_000;

/**
 * Limiter state in this process, for embedded mode or an explicit LIMITER_STORE=memory: limits
 * hold per process only. Every decision runs synchronously, so it is atomic within the process.
 *
 * Memory is bounded: expired entries are swept once a minute, and when `maxKeys` live keys are
 * held a new key is refused with LimiterUnavailableError (503) rather than evicting an old one.
 * Eviction would let anyone who sprays fresh usernames or addresses push an account's failure
 * window or lockout out of memory; refusing costs availability only while the flood lasts.
 */
export class MemoryLimiterStore implements LimiterStore {
  private readonly entries = new Map<string, StoredEntry>();
  private readonly now: () => number;
  private readonly maxKeys: number;
  private lastSweepAt: number;

  constructor(
    private readonly settings: LimiterSettings,
    options: MemoryLimiterStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.maxKeys = options.maxKeys ?? 100_000;
    this.lastSweepAt = this.now();
  }

  /** Keys currently held, expired or not yet swept included. */
  get size(): number {
    return this.entries.size;
  }

  async reserve(keys: AttemptKeys): Promise<LimiterDecision> {
    return this.decide(keys, this.tick());
  }

  async settle(reservation: Reservation, outcome: SettleOutcome): Promise<void> {
    if (outcome === 'failure') {
      return;
    }
    const { id, keys, reservedAtMs } = reservation;
    const account = accountKeys(keys.normalizedUsername, keys.tier);
    const now = this.tick();

    if (!keys.ipExempt) {
      this.removeEntries(failureBudgetKey(keys), now, (entry) => entry.id === id);
    }
    if (outcome === 'neutral') {
      this.removeEntries(account.windowKey, now, (entry) => entry.id === id);
      return;
    }
    // Failures reserved after this success were in flight while the owner logged in: they stay.
    this.removeEntries(account.windowKey, now, (entry) =>
      reservedAtMs === undefined ? true : entry.at <= reservedAtMs,
    );
    this.entries.delete(account.lockKey);
    this.entries.delete(account.lockoutCountKey);
  }

  async rememberFamiliarSource(normalizedUsername: string, clientIp: string): Promise<void> {
    const key = familiarSourceKey(normalizedUsername, clientIp);
    const now = this.tick();
    this.ensureRoom([key], now);
    this.setValue(key, 1, now + this.settings.familiarSourceTtlMs);
  }

  async isFamiliarSource(normalizedUsername: string, clientIp: string): Promise<boolean> {
    const key = familiarSourceKey(normalizedUsername, clientIp);
    return this.remainingMs(key, this.tick()) > 0;
  }

  async unlock(normalizedUsername: string): Promise<{ refilled: boolean }> {
    const now = this.tick();
    const tiers = TIERS.map((tier) => accountKeys(normalizedUsername, tier));
    for (const tier of tiers) {
      this.entries.delete(tier.lockKey);
      this.entries.delete(tier.lockoutCountKey);
    }

    // Repeated unlocks must not become fresh guesses: windows are emptied once per window.
    const marker = unlockMarkerKey(normalizedUsername);
    if (this.remainingMs(marker, now) > 0) {
      return { refilled: false };
    }
    this.ensureRoom([marker], now);
    this.setValue(marker, 1, now + this.settings.loginFailureWindowMs);
    for (const tier of tiers) {
      this.entries.delete(tier.windowKey);
    }
    return { refilled: true };
  }

  async block(subject: string, durationMs: number): Promise<void> {
    const key = blockKey(subject);
    const now = this.tick();
    const ms = Math.max(1, Math.ceil(durationMs));
    if (this.remainingMs(key, now) < ms) {
      this.ensureRoom([key], now);
      this.setValue(key, 1, now + ms);
    }
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.entries.clear();
  }

  private decide(keys: AttemptKeys, now: number): LimiterDecision {
    const { blocks, limits, account } = flattenPlan(planAttempt(keys, this.settings));

    for (const block of blocks) {
      const remaining = this.remainingMs(block.key, now);
      if (remaining > 0) {
        const retry = retryAfterSeconds(remaining);
        return {
          allowed: false,
          reason: 'blocked',
          subject: block.subject,
          retryAfterSeconds: retry,
        };
      }
    }

    for (const limit of limits) {
      const entries = this.liveEntries(limit.key, now);
      if (entries.length >= limit.limit) {
        const retry = retryAfterSeconds(this.freesInMs(entries, limit.windowMs, now));
        return { allowed: false, reason: 'throttled', limit: limit.name, retryAfterSeconds: retry };
      }
    }

    const accountPlan = account as PlannedAccount;
    const locked = this.checkLockout(accountPlan, now);
    if (locked) {
      // A locked answer still spends the request-rate slots (not the failure budget), so a flood
      // at a locked account is throttled per source like any other.
      this.countLockedRequest(limits, now);
      return locked;
    }

    this.ensureRoom([...limits.map((limit) => limit.key), accountPlan.windowKey], now);
    const id = randomUUID();
    for (const limit of limits) {
      this.append(limit.key, limit.windowMs, { id, at: now });
    }
    this.append(accountPlan.windowKey, accountPlan.windowMs, { id, at: now });
    return { allowed: true, reservation: { id, keys, reservedAtMs: now } };
  }

  /**
   * A locked answer still spends the request-rate slots (not the failure budget), so a flood at
   * a locked account is throttled per source like any other. When memory is full the answer is
   * still `locked`; only the counting is skipped.
   */
  private countLockedRequest(limits: PlannedLimit[], now: number): void {
    const requestLimits = limits.filter((limit) => limit.name !== 'ip_failure_budget');
    try {
      this.ensureRoom(
        requestLimits.map((limit) => limit.key),
        now,
      );
    } catch {
      return;
    }
    const id = randomUUID();
    for (const limit of requestLimits) {
      this.append(limit.key, limit.windowMs, { id, at: now });
    }
  }

  private checkLockout(account: PlannedAccount, now: number): LimiterDecision | undefined {
    const lockRemaining = this.remainingMs(account.lockKey, now);
    if (lockRemaining > 0) {
      const retry = retryAfterSeconds(lockRemaining);
      return { allowed: false, reason: 'locked', retryAfterSeconds: retry, lockoutStarted: false };
    }

    const failures = this.liveEntries(account.windowKey, now);
    if (failures.length < account.limit) {
      return undefined;
    }

    this.ensureRoom([account.lockKey, account.lockoutCountKey], now);
    const repeats = (this.valueOf(account.lockoutCountKey, now) ?? 0) + 1;
    this.setValue(account.lockoutCountKey, repeats, now + lockoutMemoryMs(this.settings));
    const duration = Math.ceil(
      Math.max(
        lockoutDurationMs(repeats, this.settings),
        this.freesInMs(failures, account.windowMs, now),
      ),
    );
    this.setValue(account.lockKey, 1, now + duration);
    return {
      allowed: false,
      reason: 'locked',
      retryAfterSeconds: retryAfterSeconds(duration),
      lockoutStarted: true,
    };
  }

  private freesInMs(entries: LogEntry[], windowMs: number, now: number): number {
    if (entries.length === 0) {
      return windowMs;
    }
    const oldest = Math.min(...entries.map((entry) => entry.at));
    return oldest + windowMs - now;
  }

  /** The entries of a sliding log still inside its window; drops the rest. */
  private liveEntries(key: string, now: number): LogEntry[] {
    const stored = this.entries.get(key);
    if (!stored || stored.kind !== 'log') {
      return [];
    }
    const cutoff = now - stored.windowMs;
    stored.entries = stored.entries.filter((entry) => entry.at > cutoff);
    if (stored.entries.length === 0) {
      this.entries.delete(key);
    }
    return stored.entries;
  }

  private append(key: string, windowMs: number, entry: LogEntry): void {
    const stored = this.entries.get(key);
    if (stored && stored.kind === 'log') {
      stored.entries.push(entry);
      stored.windowMs = windowMs;
      return;
    }
    this.entries.set(key, { kind: 'log', windowMs, entries: [entry] });
  }

  private removeEntries(key: string, now: number, matches: (entry: LogEntry) => boolean): void {
    const entries = this.liveEntries(key, now);
    const stored = this.entries.get(key);
    if (stored && stored.kind === 'log') {
      stored.entries = entries.filter((entry) => !matches(entry));
      if (stored.entries.length === 0) {
        this.entries.delete(key);
      }
    }
  }

  private valueOf(key: string, now: number): number | undefined {
    const stored = this.entries.get(key);
    if (!stored || stored.kind !== 'value') {
      return undefined;
    }
    if (stored.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return stored.value;
  }

  private remainingMs(key: string, now: number): number {
    const stored = this.entries.get(key);
    if (!stored || stored.kind !== 'value' || this.valueOf(key, now) === undefined) {
      return 0;
    }
    return stored.expiresAt - now;
  }

  private setValue(key: string, value: number, expiresAt: number): void {
    this.entries.set(key, { kind: 'value', value, expiresAt });
  }

  /** Refuses (fail closed) when the keys about to be created would pass `maxKeys`. */
  private ensureRoom(keys: string[], now: number): void {
    const fresh = new Set(keys.filter((key) => !this.entries.has(key))).size;
    if (this.entries.size + fresh <= this.maxKeys) {
      return;
    }
    if (now - this.lastSweepAt >= FULL_SWEEP_MIN_INTERVAL_MS) {
      this.sweep(now);
    }
    if (this.entries.size + fresh > this.maxKeys) {
      throw new LimiterUnavailableError('memory limiter store is full');
    }
  }

  private tick(): number {
    const now = this.now();
    if (now - this.lastSweepAt >= SWEEP_INTERVAL_MS) {
      this.sweep(now);
    }
    return now;
  }

  private sweep(now: number): void {
    this.lastSweepAt = now;
    for (const [key, stored] of this.entries) {
      if (stored.kind === 'log') {
        this.liveEntries(key, now);
      } else if (stored.expiresAt <= now) {
        this.entries.delete(key);
      }
    }
  }
}

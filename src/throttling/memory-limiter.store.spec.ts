import {
  attemptKeys,
  expectAllowed,
  failOnce,
  limiterSettings,
  randomIpv4,
  randomUsername,
} from '../../test/support/limiter-builders';
import { behavesLikeALimiterStore } from '../../test/support/limiter-behaviour';
import { LimiterUnavailableError } from './limiter.errors';
import type { LimiterDecision, LimiterSettings } from './limiter.types';
import { MemoryLimiterStore } from './memory-limiter.store';

const SECOND = 1000;
const MINUTE = 60 * SECOND;

class FakeClock {
  constructor(public current = Date.UTC(2025, 0, 1)) {}

  readonly now = (): number => this.current;

  advance(ms: number): void {
    this.current += ms;
  }
}

function lockoutSeconds(decision: LimiterDecision): number {
  if (decision.allowed || decision.reason !== 'locked') {
    throw new Error(`expected a lockout, got ${JSON.stringify(decision)}`);
  }
  return decision.retryAfterSeconds;
}

describe('MemoryLimiterStore', () => {
  describe('as a LimiterStore', () => {
    // A clock that moves one millisecond per reading, so reservations are ordered in time.
    behavesLikeALimiterStore(async (settings) => {
      let current = Date.UTC(2025, 0, 1);
      return new MemoryLimiterStore(settings, { now: () => (current += 1) });
    });
  });

  describe('over time', () => {
    let clock: FakeClock;

    function storeWith(overrides: Partial<LimiterSettings> = {}, maxKeys?: number) {
      return new MemoryLimiterStore(limiterSettings(overrides), { now: clock.now, maxKeys });
    }

    beforeEach(() => {
      clock = new FakeClock();
    });

    it('never allows more than LOGIN_MAX_FAILURES in any sliding window', async () => {
      const windowMs = 2 * SECOND;
      const store = storeWith({ loginFailureWindowMs: windowMs, lockoutBaseMs: 1 });
      const username = randomUsername();
      const allowedAt: number[] = [];

      for (let step = 0; step < 800; step += 1) {
        const decision = await failOnce(store, attemptKeys({ normalizedUsername: username }));
        if (decision.allowed) {
          allowedAt.push(clock.current);
        }
        clock.advance(step % 7 === 0 ? 37 : 3);
      }

      for (const at of allowedAt) {
        const inWindow = allowedAt.filter((other) => other > at - windowMs && other <= at);
        expect(inWindow.length).toBeLessThanOrEqual(5);
      }
      expect(allowedAt.length).toBeGreaterThanOrEqual(
        5 * Math.floor((clock.current - allowedAt[0]) / windowMs),
      );
    });

    it('frees a slot exactly when the oldest failure leaves the window', async () => {
      const store = storeWith({ loginFailureWindowMs: 2 * SECOND, lockoutBaseMs: 1 });
      const username = randomUsername();
      for (let index = 0; index < 5; index += 1) {
        expectAllowed(await failOnce(store, attemptKeys({ normalizedUsername: username })));
        clock.advance(100);
      }

      clock.current += 2 * SECOND - 501;
      const justBefore = await store.reserve(attemptKeys({ normalizedUsername: username }));
      clock.advance(1);
      const atTheEdge = await store.reserve(attemptKeys({ normalizedUsername: username }));

      expect(justBefore).toMatchObject({ allowed: false, reason: 'locked', lockoutStarted: true });
      expectAllowed(atTheEdge);
    });

    it('locks until the window frees a slot when that is longer than LOCKOUT_BASE', async () => {
      const store = storeWith();
      const username = randomUsername();
      for (let index = 0; index < 5; index += 1) {
        await failOnce(store, attemptKeys({ normalizedUsername: username }));
      }
      clock.advance(MINUTE);

      const locked = await store.reserve(attemptKeys({ normalizedUsername: username }));

      expect(lockoutSeconds(locked)).toBe(14 * 60);
    });

    it('doubles the lockout on repeats up to LOCKOUT_MAX, then forgets', async () => {
      const store = storeWith({
        loginFailureWindowMs: 10 * SECOND,
        lockoutBaseMs: MINUTE,
        lockoutMaxMs: 4 * MINUTE,
      });
      const username = randomUsername();
      const lockouts: number[] = [];

      for (let round = 0; round < 4; round += 1) {
        for (let index = 0; index < 5; index += 1) {
          expectAllowed(await failOnce(store, attemptKeys({ normalizedUsername: username })));
        }
        const locked = await store.reserve(attemptKeys({ normalizedUsername: username }));
        expect(locked).toMatchObject({ lockoutStarted: true });
        lockouts.push(lockoutSeconds(locked));
        clock.advance(lockoutSeconds(locked) * SECOND);
      }
      expect(lockouts).toEqual([60, 120, 240, 240]);

      clock.advance(16 * MINUTE);
      for (let index = 0; index < 5; index += 1) {
        await failOnce(store, attemptKeys({ normalizedUsername: username }));
      }
      const afterQuiet = await store.reserve(attemptKeys({ normalizedUsername: username }));
      expect(lockoutSeconds(afterQuiet)).toBe(60);
    });

    it('stays locked while the lockout lasts even if the window has room', async () => {
      const store = storeWith({ loginFailureWindowMs: 10 * SECOND });
      const username = randomUsername();
      for (let index = 0; index < 5; index += 1) {
        await failOnce(store, attemptKeys({ normalizedUsername: username }));
      }
      await store.reserve(attemptKeys({ normalizedUsername: username }));
      clock.advance(30 * SECOND);

      const stillLocked = await store.reserve(attemptKeys({ normalizedUsername: username }));
      clock.advance(30 * SECOND);
      const free = await store.reserve(attemptKeys({ normalizedUsername: username }));

      expect(stillLocked).toMatchObject({
        reason: 'locked',
        lockoutStarted: false,
        retryAfterSeconds: 30,
      });
      expectAllowed(free);
    });

    it('refills on unlock again once LOGIN_FAILURE_WINDOW has passed', async () => {
      const store = storeWith();
      const username = randomUsername();

      expect(await store.unlock(username)).toEqual({ refilled: true });
      clock.advance(14 * MINUTE);
      expect(await store.unlock(username)).toEqual({ refilled: false });
      clock.advance(MINUTE);
      expect(await store.unlock(username)).toEqual({ refilled: true });
    });

    it('forgets a familiar source after FAMILIAR_SOURCE_TTL', async () => {
      const store = storeWith({ familiarSourceTtlMs: MINUTE });
      const username = randomUsername();
      const clientIp = randomIpv4();
      await store.rememberFamiliarSource(username, clientIp);

      clock.advance(MINUTE - 1);
      expect(await store.isFamiliarSource(username, clientIp)).toBe(true);
      clock.advance(1);
      expect(await store.isFamiliarSource(username, clientIp)).toBe(false);
    });

    it('lifts a block when it expires', async () => {
      const store = storeWith();
      const clientIp = randomIpv4();
      await store.block(clientIp, 10 * SECOND);

      expect(await store.reserve(attemptKeys({ clientIp }))).toMatchObject({
        reason: 'blocked',
        retryAfterSeconds: 10,
      });
      clock.advance(10 * SECOND);
      expectAllowed(await store.reserve(attemptKeys({ clientIp })));
    });

    it('restores the IP failure budget a day later', async () => {
      const store = storeWith({ ipFailureBudget: 1 });
      const clientIp = randomIpv4();
      await failOnce(store, attemptKeys({ clientIp }));

      const refused = await store.reserve(attemptKeys({ clientIp }));
      clock.advance(24 * 60 * MINUTE);

      expect(refused).toMatchObject({ limit: 'ip_failure_budget', retryAfterSeconds: 24 * 3600 });
      expectAllowed(await store.reserve(attemptKeys({ clientIp })));
    });
  });

  describe('memory bound', () => {
    it('refuses new keys rather than evicting when full, then recovers', async () => {
      const clock = new FakeClock();
      const store = new MemoryLimiterStore(limiterSettings(), { now: clock.now, maxKeys: 50 });
      const lockedUser = randomUsername();
      for (let index = 0; index < 5; index += 1) {
        await failOnce(
          store,
          attemptKeys({ normalizedUsername: lockedUser, clientIp: '10.0.0.1' }),
        );
      }

      let refusal: unknown;
      try {
        for (let index = 0; index < 50; index += 1) {
          await store.reserve(attemptKeys());
        }
      } catch (error) {
        refusal = error;
      }
      expect(refusal).toBeInstanceOf(LimiterUnavailableError);
      expect(store.size).toBeLessThanOrEqual(50);
      expect(await store.reserve(attemptKeys({ normalizedUsername: lockedUser }))).toMatchObject({
        reason: 'locked',
      });

      clock.advance(24 * 60 * MINUTE);
      expectAllowed(await store.reserve(attemptKeys()));
      expect(store.size).toBeLessThan(50);
    });

    it('sweeps expired entries as time goes by', async () => {
      const clock = new FakeClock();
      const store = new MemoryLimiterStore(limiterSettings(), { now: clock.now });
      for (let index = 0; index < 100; index += 1) {
        await store.block(randomIpv4(), SECOND);
      }

      clock.advance(2 * MINUTE);
      await store.ping();
      await store.isFamiliarSource(randomUsername(), randomIpv4());

      expect(store.size).toBe(0);
    });
  });
});

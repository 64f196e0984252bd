import type { LimiterSettings, LimiterStore } from '../../src/throttling/limiter.types';
import {
  attemptKeys,
  expectAllowed,
  failOnce,
  ipv6Source,
  limiterSettings,
  randomFingerprint,
  randomIpv4,
  randomIpv6Site,
  randomUsername,
  succeedOnce,
} from './limiter-builders';

export type LimiterStoreFactory = (settings: LimiterSettings) => Promise<LimiterStore>;

/**
 * What every LimiterStore must do, whatever keeps its state. None of these cases waits for a
 * window to pass, so they run alike on a fake clock and on a real Redis.
 */
export function behavesLikeALimiterStore(createStore: LimiterStoreFactory): void {
  const settings = limiterSettings();

  async function lockAccount(store: LimiterStore, username: string): Promise<void> {
    for (let index = 0; index < settings.loginMaxFailures; index += 1) {
      expectAllowed(await failOnce(store, attemptKeys({ normalizedUsername: username })));
    }
    const sixth = await store.reserve(attemptKeys({ normalizedUsername: username }));
    expect(sixth).toMatchObject({ allowed: false, reason: 'locked', lockoutStarted: true });
  }

  it('allows exactly LOGIN_MAX_FAILURES of 200 parallel attempts on one account', async () => {
    const store = await createStore(settings);
    const username = randomUsername();

    const decisions = await Promise.all(
      Array.from({ length: 200 }, () =>
        store.reserve(attemptKeys({ normalizedUsername: username })),
      ),
    );
    await Promise.all(
      decisions.map((decision) =>
        decision.allowed ? store.settle(decision.reservation, 'failure') : Promise.resolve(),
      ),
    );

    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(5);
    expect(
      decisions.filter((decision) => !decision.allowed && decision.reason === 'locked'),
    ).toHaveLength(195);
    const next = await store.reserve(attemptKeys({ normalizedUsername: username }));
    expect(next).toMatchObject({ allowed: false, reason: 'locked' });
  });

  it('still lets other accounts in while one is attacked in parallel', async () => {
    const store = await createStore(settings);
    const victim = randomUsername();

    const attack = Array.from({ length: 100 }, () =>
      failOnce(store, attemptKeys({ normalizedUsername: victim })),
    );
    const others = Array.from({ length: 20 }, () => store.reserve(attemptKeys()));
    const decisions = await Promise.all(others);
    await Promise.all(attack);

    expect(decisions.every((decision) => decision.allowed)).toBe(true);
  });

  it('starts a lockout on the sixth sequential failure', async () => {
    const store = await createStore(settings);
    const username = randomUsername();

    await lockAccount(store, username);
    const seventh = await store.reserve(attemptKeys({ normalizedUsername: username }));

    expect(seventh).toMatchObject({ allowed: false, reason: 'locked', lockoutStarted: false });
    expect(seventh.allowed === false && seventh.retryAfterSeconds).toBeGreaterThanOrEqual(60);
  });

  it('lets the familiar tier log in while the unfamiliar tier is locked', async () => {
    const store = await createStore(settings);
    const username = randomUsername();
    await lockAccount(store, username);

    await succeedOnce(store, attemptKeys({ normalizedUsername: username, tier: 'familiar' }));

    const unfamiliar = await store.reserve(attemptKeys({ normalizedUsername: username }));
    expect(unfamiliar).toMatchObject({ allowed: false, reason: 'locked' });
  });

  it('resets only its own tier on success', async () => {
    const store = await createStore(settings);
    const username = randomUsername();
    const familiar = (): ReturnType<typeof attemptKeys> =>
      attemptKeys({ normalizedUsername: username, tier: 'familiar' });
    const unfamiliar = (): ReturnType<typeof attemptKeys> =>
      attemptKeys({ normalizedUsername: username });
    for (let index = 0; index < 4; index += 1) {
      expectAllowed(await failOnce(store, familiar()));
      expectAllowed(await failOnce(store, unfamiliar()));
    }

    await succeedOnce(store, familiar());

    for (let index = 0; index < 5; index += 1) {
      expectAllowed(await failOnce(store, familiar()));
    }
    expect(await store.reserve(familiar())).toMatchObject({ allowed: false, reason: 'locked' });
    expectAllowed(await failOnce(store, unfamiliar()));
    expect(await store.reserve(unfamiliar())).toMatchObject({ allowed: false, reason: 'locked' });
  });

  it('gives nothing on the IP failure budget for logging in to an own account', async () => {
    const store = await createStore(limiterSettings({ ipFailureBudget: 3 }));
    const clientIp = randomIpv4();
    const ownAccount = randomUsername();
    let guesses = 0;

    for (let round = 0; round < 6; round += 1) {
      const guess = await failOnce(store, attemptKeys({ clientIp }));
      if (guess.allowed) {
        guesses += 1;
      }
      const own = await store.reserve(attemptKeys({ clientIp, normalizedUsername: ownAccount }));
      if (own.allowed) {
        await store.settle(own.reservation, 'success');
      }
    }

    expect(guesses).toBe(3);
    const refused = await store.reserve(attemptKeys({ clientIp }));
    expect(refused).toMatchObject({
      allowed: false,
      reason: 'throttled',
      limit: 'ip_failure_budget',
    });
  });

  it('gives back the failure slots of a neutral attempt', async () => {
    const store = await createStore(limiterSettings({ ipFailureBudget: 2, ipUserLimit: 100 }));
    const username = randomUsername();
    const clientIp = randomIpv4();

    for (let index = 0; index < 10; index += 1) {
      const reservation = expectAllowed(
        await store.reserve(attemptKeys({ normalizedUsername: username, clientIp })),
      );
      await store.settle(reservation, 'neutral');
    }

    expectAllowed(await failOnce(store, attemptKeys({ normalizedUsername: username, clientIp })));
    expectAllowed(await failOnce(store, attemptKeys({ normalizedUsername: username, clientIp })));
    const third = await store.reserve(attemptKeys({ normalizedUsername: username, clientIp }));
    expect(third).toMatchObject({
      allowed: false,
      reason: 'throttled',
      limit: 'ip_failure_budget',
    });
  });

  it('keeps request-count slots whatever the outcome', async () => {
    const store = await createStore(limiterSettings({ ipLoginLimit: 3 }));
    const clientIp = randomIpv4();

    await succeedOnce(store, attemptKeys({ clientIp }));
    const neutral = expectAllowed(await store.reserve(attemptKeys({ clientIp })));
    await store.settle(neutral, 'neutral');
    await failOnce(store, attemptKeys({ clientIp }));

    const fourth = await store.reserve(attemptKeys({ clientIp }));
    expect(fourth).toMatchObject({ allowed: false, reason: 'throttled', limit: 'ip' });
  });

  it('throttles an address past IP_LOGIN_LIMIT with a Retry-After', async () => {
    const store = await createStore(limiterSettings({ ipLoginLimit: 3 }));
    const clientIp = randomIpv4();
    for (let index = 0; index < 3; index += 1) {
      await succeedOnce(store, attemptKeys({ clientIp }));
    }

    const refused = await store.reserve(attemptKeys({ clientIp }));

    expect(refused).toMatchObject({ allowed: false, reason: 'throttled', limit: 'ip' });
    const retryAfter = refused.allowed ? 0 : refused.retryAfterSeconds;
    expect(retryAfter).toBeGreaterThanOrEqual(59);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expectAllowed(await store.reserve(attemptKeys()));
  });

  it('spends request-rate slots on a locked attempt, so a flood is throttled', async () => {
    const store = await createStore(limiterSettings({ ipUserLimit: 3 }));
    const clientIp = randomIpv4();
    const username = randomUsername();
    await lockAccount(store, username);

    for (let index = 0; index < 3; index += 1) {
      const locked = await store.reserve(attemptKeys({ clientIp, normalizedUsername: username }));
      expect(locked).toMatchObject({ reason: 'locked' });
    }

    const fourth = await store.reserve(attemptKeys({ clientIp, normalizedUsername: username }));
    expect(fourth).toMatchObject({ reason: 'throttled', limit: 'ip_user' });
  });

  it('spends no IP failure budget on a locked attempt', async () => {
    const store = await createStore(limiterSettings({ ipFailureBudget: 2, ipUserLimit: 50 }));
    const clientIp = randomIpv4();
    const username = randomUsername();
    await lockAccount(store, username);
    for (let index = 0; index < 5; index += 1) {
      const locked = await store.reserve(attemptKeys({ clientIp, normalizedUsername: username }));
      expect(locked).toMatchObject({ reason: 'locked' });
    }

    expectAllowed(await failOnce(store, attemptKeys({ clientIp })));
    expectAllowed(await failOnce(store, attemptKeys({ clientIp })));
    expect(await store.reserve(attemptKeys({ clientIp }))).toMatchObject({
      reason: 'throttled',
      limit: 'ip_failure_budget',
    });
  });

  it('counts the IPv6 addresses of one /64, and of one /48, together', async () => {
    const store = await createStore(limiterSettings({ ipLoginLimit: 3 }));
    const site = randomIpv6Site();
    for (let index = 0; index < 3; index += 1) {
      await succeedOnce(store, attemptKeys(ipv6Source(site, '1')));
    }

    const sameSubnet = await store.reserve(attemptKeys(ipv6Source(site, '1')));
    const sameSite = await store.reserve(attemptKeys(ipv6Source(site, '2')));
    const elsewhere = await store.reserve(attemptKeys(ipv6Source(randomIpv6Site(), '1')));

    expect(sameSubnet).toMatchObject({
      allowed: false,
      reason: 'throttled',
      limit: 'ip_prefix_64',
    });
    expect(sameSite).toMatchObject({ allowed: false, reason: 'throttled', limit: 'ip_prefix_48' });
    expectAllowed(elsewhere);
  });

  it('keeps the IP failure budget of an IPv6 client per /64', async () => {
    const store = await createStore(limiterSettings({ ipFailureBudget: 2 }));
    const site = randomIpv6Site();

    expectAllowed(await failOnce(store, attemptKeys(ipv6Source(site, 'a'))));
    expectAllowed(await failOnce(store, attemptKeys(ipv6Source(site, 'a'))));
    const rotated = await store.reserve(attemptKeys(ipv6Source(site, 'a')));

    expect(rotated).toMatchObject({ reason: 'throttled', limit: 'ip_failure_budget' });
    expectAllowed(await store.reserve(attemptKeys(ipv6Source(site, 'b'))));
  });

  it('throttles one address on one username past IP_USER_LIMIT', async () => {
    const store = await createStore(limiterSettings({ ipUserLimit: 3, loginMaxFailures: 50 }));
    const keys = attemptKeys();
    for (let index = 0; index < 3; index += 1) {
      expectAllowed(await failOnce(store, keys));
    }

    expect(await store.reserve(keys)).toMatchObject({ reason: 'throttled', limit: 'ip_user' });
    expectAllowed(await store.reserve({ ...keys, clientIp: randomIpv4() }));
  });

  it('throttles one certificate past CERT_LOGIN_LIMIT', async () => {
    const store = await createStore(limiterSettings({ certLoginLimit: 2 }));
    const certificateFingerprint = randomFingerprint();
    await succeedOnce(store, attemptKeys({ certificateFingerprint }));
    await succeedOnce(store, attemptKeys({ certificateFingerprint }));

    const third = await store.reserve(attemptKeys({ certificateFingerprint }));

    expect(third).toMatchObject({ allowed: false, reason: 'throttled', limit: 'certificate' });
  });

  it('skips the per-address limits and IP failure budget for an exempt address', async () => {
    const exemptSettings = limiterSettings({ ipLoginLimit: 2, ipFailureBudget: 2 });
    const store = await createStore(exemptSettings);
    const clientIp = randomIpv4();
    for (let index = 0; index < 6; index += 1) {
      expectAllowed(await failOnce(store, attemptKeys({ clientIp, ipExempt: true })));
    }

    const username = randomUsername();
    for (let index = 0; index < 5; index += 1) {
      expectAllowed(
        await failOnce(
          store,
          attemptKeys({ clientIp, ipExempt: true, normalizedUsername: username }),
        ),
      );
    }
    const locked = await store.reserve(
      attemptKeys({ clientIp, ipExempt: true, normalizedUsername: username }),
    );
    expect(locked).toMatchObject({ allowed: false, reason: 'locked' });
  });

  it('answers blocked for a blocked address or prefix, before any other check', async () => {
    const store = await createStore(settings);
    const username = randomUsername();
    await lockAccount(store, username);
    const clientIp = randomIpv4();
    const site = randomIpv6Site();

    await store.block(clientIp, 30_000);
    await store.block(`${site}:7::/64`, 90_000);

    const byAddress = await store.reserve(attemptKeys({ clientIp, normalizedUsername: username }));
    const byPrefix = await store.reserve(attemptKeys(ipv6Source(site, '7')));
    expect(byAddress).toMatchObject({ allowed: false, reason: 'blocked', subject: clientIp });
    expect(byPrefix).toMatchObject({ reason: 'blocked', subject: `${site}:7::/64` });
    expect(byAddress.allowed === false && byAddress.retryAfterSeconds).toBeLessThanOrEqual(30);
    expectAllowed(await store.reserve(attemptKeys(ipv6Source(site, '8'))));
  });

  it('never shortens a block that is already longer', async () => {
    const store = await createStore(settings);
    const clientIp = randomIpv4();

    await store.block(clientIp, 600_000);
    await store.block(clientIp, 1_000);

    const refused = await store.reserve(attemptKeys({ clientIp }));
    expect(refused.allowed === false && refused.retryAfterSeconds).toBeGreaterThan(500);
  });

  it('answers throttled before locked', async () => {
    const store = await createStore(limiterSettings({ ipLoginLimit: 1 }));
    const username = randomUsername();
    await lockAccount(store, username);
    const clientIp = randomIpv4();
    await succeedOnce(store, attemptKeys({ clientIp }));

    const refused = await store.reserve(attemptKeys({ clientIp, normalizedUsername: username }));

    expect(refused).toMatchObject({ allowed: false, reason: 'throttled', limit: 'ip' });
  });

  it('refills the failure windows on unlock at most once per window', async () => {
    const store = await createStore(settings);
    const username = randomUsername();
    await lockAccount(store, username);

    expect(await store.unlock(username)).toEqual({ refilled: true });
    await lockAccount(store, username);
    expect(await store.unlock(username)).toEqual({ refilled: false });

    const afterSecondUnlock = await store.reserve(attemptKeys({ normalizedUsername: username }));
    expect(afterSecondUnlock).toMatchObject({ allowed: false, reason: 'locked' });
  });

  it('clears a lockout on unlock even when it does not refill', async () => {
    const store = await createStore(settings);
    const username = randomUsername();
    await store.unlock(username);
    for (let index = 0; index < 4; index += 1) {
      await failOnce(store, attemptKeys({ normalizedUsername: username }));
    }
    const neutral = expectAllowed(
      await store.reserve(attemptKeys({ normalizedUsername: username })),
    );
    const locked = await store.reserve(attemptKeys({ normalizedUsername: username }));
    expect(locked).toMatchObject({ reason: 'locked', lockoutStarted: true });
    await store.settle(neutral, 'neutral');

    expect(await store.unlock(username)).toEqual({ refilled: false });
    expectAllowed(await store.reserve(attemptKeys({ normalizedUsername: username })));
  });

  it('remembers familiar sources per account and address', async () => {
    const store = await createStore(settings);
    const username = randomUsername();
    const clientIp = randomIpv4();

    expect(await store.isFamiliarSource(username, clientIp)).toBe(false);
    await store.rememberFamiliarSource(username, clientIp);

    expect(await store.isFamiliarSource(username, clientIp)).toBe(true);
    expect(await store.isFamiliarSource(username, randomIpv4())).toBe(false);
    expect(await store.isFamiliarSource(randomUsername(), clientIp)).toBe(false);
  });

  it('keeps failures that were in flight when the owner logged in', async () => {
    const store = await createStore(settings);
    const username = randomUsername();
    const owner = expectAllowed(await store.reserve(attemptKeys({ normalizedUsername: username })));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const guesses = [];
    for (let index = 0; index < 4; index += 1) {
      guesses.push(
        expectAllowed(await store.reserve(attemptKeys({ normalizedUsername: username }))),
      );
    }

    await store.settle(owner, 'success');
    await Promise.all(guesses.map((guess) => store.settle(guess, 'failure')));

    expectAllowed(await failOnce(store, attemptKeys({ normalizedUsername: username })));
    const sixth = await store.reserve(attemptKeys({ normalizedUsername: username }));
    expect(sixth).toMatchObject({ reason: 'locked' });
  });

  it('answers pings', async () => {
    const store = await createStore(settings);
    await expect(store.ping()).resolves.toBeUndefined();
  });
}

import type { Redis } from 'ioredis';
import { accountKeys } from '../src/throttling/limiter-plan';
import { LimiterUnavailableError } from '../src/throttling/limiter.errors';
import type { LimiterSettings } from '../src/throttling/limiter.types';
import {
  assertNoEviction,
  createRedisClient,
  waitForRedis,
} from '../src/throttling/redis-connection';
import { RedisLimiterStore } from '../src/throttling/redis-limiter.store';
import {
  attemptKeys,
  expectAllowed,
  failOnce,
  limiterSettings,
  randomUsername,
} from './support/limiter-builders';
import { behavesLikeALimiterStore } from './support/limiter-behaviour';
import {
  deleteKeysWithPrefix,
  eventually,
  listKeysWithPrefix,
  redisServerUnavailableReason,
  sharedRedisUnavailableReason,
  sharedRedisUrl,
  startRedisSentinel,
  startRedisServer,
  uniqueKeyPrefix,
  type RedisServer,
} from './support/redis';

const sharedRedisMissing = sharedRedisUnavailableReason();
if (sharedRedisMissing) {
  console.warn(`Skipping the shared-Redis limiter tests: ${sharedRedisMissing}`);
}
const redisServerMissing = redisServerUnavailableReason();
if (redisServerMissing) {
  console.warn(`Skipping the limiter tests that start their own Redis: ${redisServerMissing}`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

(sharedRedisMissing ? describe.skip : describe)('RedisLimiterStore on a single Redis', () => {
  const keyPrefix = uniqueKeyPrefix();
  let client: Redis;

  const storeOn = (redis: Redis, settings: LimiterSettings): RedisLimiterStore =>
    new RedisLimiterStore(redis, settings, { keyPrefix });

  beforeAll(async () => {
    client = createRedisClient({ url: sharedRedisUrl() }) as Redis;
    await waitForRedis(client);
  });

  afterAll(async () => {
    await deleteKeysWithPrefix(client, keyPrefix);
    await client.quit();
  });

  describe('as a LimiterStore', () => {
    behavesLikeALimiterStore(async (settings) => storeOn(client, settings));
  });

  it('allows exactly five of 200 parallel attempts sent through two connections', async () => {
    const replica = createRedisClient({ url: sharedRedisUrl() }) as Redis;
    await waitForRedis(replica);
    const settings = limiterSettings();
    const stores = [storeOn(client, settings), storeOn(replica, settings)];
    const username = randomUsername();

    try {
      const decisions = await Promise.all(
        Array.from({ length: 200 }, (_, index) =>
          failOnce(stores[index % 2], attemptKeys({ normalizedUsername: username })),
        ),
      );

      expect(decisions.filter((decision) => decision.allowed)).toHaveLength(5);
      expect(
        decisions.filter((decision) => !decision.allowed && decision.reason === 'locked'),
      ).toHaveLength(195);
    } finally {
      await replica.quit();
    }
  });

  it('never allows more than five failures in any two-second window', async () => {
    const windowMs = 2000;
    const store = storeOn(
      client,
      limiterSettings({ loginFailureWindowMs: windowMs, lockoutBaseMs: 1, lockoutMaxMs: 10 }),
    );
    const username = randomUsername();
    const allowedAt: number[] = [];
    const deadline = Date.now() + 4500;

    while (Date.now() < deadline) {
      const decision = await failOnce(store, attemptKeys({ normalizedUsername: username }));
      if (decision.allowed) {
        allowedAt.push(decision.reservation.reservedAtMs ?? Number.NaN);
      }
      await sleep(10);
    }

    for (const at of allowedAt) {
      const inWindow = allowedAt.filter((other) => other > at - windowMs && other <= at);
      expect(inWindow.length).toBeLessThanOrEqual(5);
    }
    expect(allowedAt.length).toBeGreaterThanOrEqual(10);
  });

  it('doubles the lockout on each repeat up to LOCKOUT_MAX', async () => {
    const settings = limiterSettings({
      loginFailureWindowMs: 300,
      lockoutBaseMs: 400,
      lockoutMaxMs: 1600,
    });
    const store = storeOn(client, settings);
    const username = randomUsername();
    const keys = accountKeys(username, 'unfamiliar');
    const lockouts: number[] = [];

    for (let round = 0; round < 4; round += 1) {
      const failures = await Promise.all(
        Array.from({ length: 5 }, () =>
          failOnce(store, attemptKeys({ normalizedUsername: username })),
        ),
      );
      expect(failures.every((decision) => decision.allowed)).toBe(true);
      const sixth = await store.reserve(attemptKeys({ normalizedUsername: username }));
      expect(sixth).toMatchObject({ allowed: false, reason: 'locked', lockoutStarted: true });

      const remaining = await client.pttl(store.key(keys.lockKey));
      lockouts.push(Math.ceil(remaining / 100) * 100);
      await sleep(remaining + 20);
    }

    expect(lockouts).toEqual([400, 800, 1600, 1600]);
    const remembered = await client.pttl(store.key(keys.lockoutCountKey));
    expect(remembered).toBeGreaterThan(4000);
    expect(remembered).toBeLessThanOrEqual(4 * 1600);
  });

  it('writes no raw username into key names', async () => {
    const store = storeOn(client, limiterSettings());
    const username = `secret-${randomUsername()}-${'x'.repeat(300)}`;
    await failOnce(store, attemptKeys({ normalizedUsername: username }));
    await store.rememberFamiliarSource(username, '10.1.2.3');

    const keys = await listKeysWithPrefix(client, keyPrefix);

    expect(keys.length).toBeGreaterThan(0);
    expect(keys.some((key) => key.includes('secret-'))).toBe(false);
    expect(Math.max(...keys.map((key) => key.length))).toBeLessThan(keyPrefix.length + 120);
  });

  it('leaves a client it does not own connected on close', async () => {
    const store = storeOn(client, limiterSettings());

    await store.close();

    await expect(client.ping()).resolves.toBe('PONG');
  });
});

(redisServerMissing ? describe.skip : describe)('RedisLimiterStore on its own redis-server', () => {
  const settings = limiterSettings();

  it('fails fast while Redis is down and recovers by itself when it returns', async () => {
    let server: RedisServer = await startRedisServer();
    const store = new RedisLimiterStore(createRedisClient({ url: server.url }), settings, {
      ownsClient: true,
    });
    try {
      await eventually(() => store.ping());
      expectAllowed(await store.reserve(attemptKeys()));

      await server.stop();
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const startedAt = Date.now();
        await expect(store.reserve(attemptKeys())).rejects.toBeInstanceOf(LimiterUnavailableError);
        expect(Date.now() - startedAt).toBeLessThan(2500);
      }

      server = await startRedisServer({ port: server.port });
      const decision = await eventually(() => store.reserve(attemptKeys()), 15_000);
      expectAllowed(decision);
    } finally {
      await store.close();
      await server.stop();
    }
  });

  it('fails fast while Redis hangs without closing the connection', async () => {
    const server = await startRedisServer();
    const store = new RedisLimiterStore(createRedisClient({ url: server.url }), settings, {
      ownsClient: true,
    });
    try {
      await eventually(() => store.ping());

      server.pause();
      const startedAt = Date.now();
      await expect(store.reserve(attemptKeys())).rejects.toBeInstanceOf(LimiterUnavailableError);
      expect(Date.now() - startedAt).toBeLessThan(3000);

      server.resume();
      expectAllowed(await eventually(() => store.reserve(attemptKeys())));
    } finally {
      server.resume();
      await store.close();
      await server.stop();
    }
  });

  it('refuses a Redis that may evict keys', async () => {
    const server = await startRedisServer({ args: ['--maxmemory-policy', 'allkeys-lru'] });
    const client = createRedisClient({ url: server.url });
    try {
      await waitForRedis(client);
      await expect(assertNoEviction(client)).rejects.toThrow(/allkeys-lru.*noeviction/);
    } finally {
      client.disconnect();
      await server.stop();
    }
  });

  it('accepts a Redis with noeviction, waiting for a fresh client to connect', async () => {
    const server = await startRedisServer();
    const client = createRedisClient({ url: server.url });
    try {
      await expect(assertNoEviction(client)).resolves.toBeUndefined();
    } finally {
      client.disconnect();
      await server.stop();
    }
  });

  it('reaches the master through Sentinel', async () => {
    const master = await startRedisServer();
    const sentinel = await startRedisSentinel(master.port, 'gatehouse');
    const client = createRedisClient({ url: `redis-sentinel://${sentinel.address}/gatehouse` });
    try {
      await waitForRedis(client);
      const store = new RedisLimiterStore(client, settings);
      expectAllowed(await store.reserve(attemptKeys()));
      expect(await client.dbsize()).toBeGreaterThan(0);
    } finally {
      client.disconnect();
      await sentinel.stop();
      await master.stop();
    }
  });
});

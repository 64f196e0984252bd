import type { Cluster } from 'ioredis';
import { planAttempt, type KeyGroup } from '../src/throttling/limiter-plan';
import type { AttemptKeys, LimiterSettings } from '../src/throttling/limiter.types';
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
  ipv6Source,
  limiterSettings,
  randomFingerprint,
  randomIpv6Site,
  randomUsername,
} from './support/limiter-builders';
import { behavesLikeALimiterStore } from './support/limiter-behaviour';
import {
  keySlot,
  redisServerUnavailableReason,
  startRedisCluster,
  uniqueKeyPrefix,
  type RedisCluster,
} from './support/redis';

const redisServerMissing = redisServerUnavailableReason();
if (redisServerMissing) {
  console.warn(`Skipping the Redis Cluster limiter tests: ${redisServerMissing}`);
}

function groupKeys(group: KeyGroup): string[] {
  return [
    ...group.blocks.map((block) => block.key),
    ...group.limits.map((limit) => limit.key),
    ...(group.account ? [group.account.windowKey, group.account.lockKey] : []),
  ];
}

(redisServerMissing ? describe.skip : describe)('RedisLimiterStore on a Redis Cluster', () => {
  const keyPrefix = uniqueKeyPrefix();
  const settings = limiterSettings();
  let cluster: RedisCluster;
  let client: Cluster;

  const storeOn = (redis: Cluster, storeSettings: LimiterSettings): RedisLimiterStore =>
    new RedisLimiterStore(redis, storeSettings, { keyPrefix });

  function fullAttempt(normalizedUsername = randomUsername()): AttemptKeys {
    return attemptKeys({
      ...ipv6Source(randomIpv6Site(), '1'),
      normalizedUsername,
      certificateFingerprint: randomFingerprint(),
    });
  }

  beforeAll(async () => {
    cluster = await startRedisCluster();
    client = createRedisClient({ clusterNodes: cluster.nodes }) as Cluster;
    await waitForRedis(client, 20_000);
  }, 60_000);

  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  describe('as a LimiterStore', () => {
    behavesLikeALimiterStore(async (storeSettings) => storeOn(client, storeSettings));
  });

  it('spreads the keys of one attempt over several slots, one slot per group', async () => {
    const store = storeOn(client, settings);
    const plan = planAttempt(fullAttempt(), settings);

    const slotsPerGroup = await Promise.all(
      plan.groups.map((group) =>
        Promise.all(groupKeys(group).map((key) => keySlot(client, store.key(key)))),
      ),
    );

    expect(plan.groups).toHaveLength(5);
    for (const slots of slotsPerGroup) {
      expect(new Set(slots).size).toBe(1);
    }
    expect(new Set(slotsPerGroup.map((slots) => slots[0])).size).toBeGreaterThan(1);
  });

  it('keeps request-rate slots and gives back the failure budget on a lockout', async () => {
    const store = storeOn(client, settings);
    const username = randomUsername();
    for (let index = 0; index < 5; index += 1) {
      expectAllowed(await failOnce(store, attemptKeys({ normalizedUsername: username })));
    }
    const refusedKeys = fullAttempt(username);
    const allowedKeys = fullAttempt();
    const limitsOf = (keys: AttemptKeys) =>
      planAttempt(keys, settings).groups.flatMap((group) => group.limits);
    const countSlots = async (keys: AttemptKeys): Promise<number[]> =>
      Promise.all(limitsOf(keys).map((limit) => client.zcard(store.key(limit.key))));

    const refused = await store.reserve(refusedKeys);
    expectAllowed(await store.reserve(allowedKeys));

    expect(refused).toMatchObject({ allowed: false, reason: 'locked' });
    const refusedCounts = await countSlots(refusedKeys);
    expect(refusedCounts.length).toBeGreaterThanOrEqual(5);
    const expected = limitsOf(refusedKeys).map((limit) =>
      limit.name === 'ip_failure_budget' ? 0 : 1,
    );
    expect(expected).toContain(0);
    expect(refusedCounts).toEqual(expected);
    expect((await countSlots(allowedKeys)).every((count) => count === 1)).toBe(true);
  });

  it('allows exactly five of 200 parallel attempts sent through two cluster clients', async () => {
    const replica = createRedisClient({ clusterNodes: cluster.nodes }) as Cluster;
    await waitForRedis(replica, 20_000);
    const stores = [storeOn(client, settings), storeOn(replica, settings)];
    const username = randomUsername();

    try {
      const decisions = await Promise.all(
        Array.from({ length: 200 }, (_, index) =>
          failOnce(stores[index % 2], fullAttempt(username)),
        ),
      );

      expect(decisions.filter((decision) => decision.allowed)).toHaveLength(5);
      expect(
        decisions.filter((decision) => !decision.allowed && decision.reason === 'locked'),
      ).toHaveLength(195);
    } finally {
      replica.disconnect();
    }
  });

  it('checks every master for noeviction', async () => {
    const fresh = createRedisClient({ clusterNodes: cluster.nodes });
    try {
      await expect(assertNoEviction(fresh)).resolves.toBeUndefined();
    } finally {
      fresh.disconnect();
    }

    // Our own throw-away node, never the shared Redis.
    const [master] = client.nodes('master').slice(-1);
    await master.config('SET', 'maxmemory-policy', 'volatile-lru');
    try {
      await expect(assertNoEviction(client)).rejects.toThrow(
        `${master.options.host}:${master.options.port} has maxmemory-policy volatile-lru`,
      );
    } finally {
      await master.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });
});

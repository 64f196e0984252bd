import { randomUUID } from 'node:crypto';
import {
  accountKeys,
  blockKey,
  failureBudgetKey,
  familiarSourceKey,
  flattenPlan,
  lockoutMemoryMs,
  planAttempt,
  TIERS,
  unlockMarkerKey,
  type AttemptPlan,
  type KeyGroup,
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
import type { RedisClient } from './redis-connection';
import { BLOCK_SCRIPT, RESERVE_SCRIPT } from './redis-limiter.scripts';

export interface RedisLimiterStoreOptions {
  /** Put in front of every key; must not contain `{` or `}`. Default `gatehouse:limiter:`. */
  keyPrefix?: string;
  /** Quit the client on `close()`. Only for a client this store was handed to own. */
  ownsClient?: boolean;
}

type Verdict = 'allowed' | 'blocked' | 'throttled' | 'locked';
type ScriptAnswer = [Verdict, number, number, number];

interface ScriptedCommands {
  gatehouseLimiterReserve(numberOfKeys: number, ...args: Array<string | number>): Promise<unknown>;
  gatehouseLimiterBlock(key: string, durationMs: number): Promise<unknown>;
}

/**
 * Limiter state in Redis: a single primary, Sentinel, or Cluster.
 *
 * On one node the whole attempt is decided by one script call. A Cluster refuses a script whose
 * keys span slots, so there the attempt is reserved group by group (address, prefixes,
 * certificate, username), and a group that refuses makes the store give back what the earlier
 * groups reserved. Between the two steps an earlier group briefly holds a slot that is then
 * returned: other attempts may see less room, never more, so no limit is ever passed.
 */
export class RedisLimiterStore implements LimiterStore {
  private readonly scripted: RedisClient & ScriptedCommands;
  private readonly keyPrefix: string;
  private readonly ownsClient: boolean;

  constructor(
    private readonly client: RedisClient,
    private readonly settings: LimiterSettings,
    options: RedisLimiterStoreOptions = {},
  ) {
    this.keyPrefix = options.keyPrefix ?? 'gatehouse:limiter:';
    this.ownsClient = options.ownsClient ?? false;
    if (/[{}]/.test(this.keyPrefix)) {
      throw new Error('RedisLimiterStore: the key prefix must not contain a hash tag');
    }

    // defineCommand sends EVALSHA and falls back to EVAL on NOSCRIPT, per node, so a Redis that
    // restarted empty (or a new cluster master) gets the script again without our help.
    client.defineCommand('gatehouseLimiterReserve', { lua: RESERVE_SCRIPT });
    client.defineCommand('gatehouseLimiterBlock', { lua: BLOCK_SCRIPT, numberOfKeys: 1 });
    this.scripted = client as RedisClient & ScriptedCommands;
  }

  /** Full Redis key names, as the store writes them; for operators and tests. */
  key(logicalKey: string): string {
    return this.keyPrefix + logicalKey;
  }

  async reserve(keys: AttemptKeys): Promise<LimiterDecision> {
    const plan = planAttempt(keys, this.settings);
    const id = randomUUID();

    return this.guarded('reserve', () =>
      this.client.isCluster
        ? this.reserveGroupByGroup(plan, keys, id)
        : this.reserveAtOnce(plan, keys, id),
    );
  }

  async settle(reservation: Reservation, outcome: SettleOutcome): Promise<void> {
    if (outcome === 'failure') {
      return;
    }
    const { id, keys, reservedAtMs } = reservation;
    const account = accountKeys(keys.normalizedUsername, keys.tier);
    const commands: Array<Promise<unknown>> = [];

    if (!keys.ipExempt) {
      commands.push(this.client.zrem(this.key(failureBudgetKey(keys)), id));
    }
    if (outcome === 'neutral') {
      commands.push(this.client.zrem(this.key(account.windowKey), id));
    } else {
      // Failures reserved after this success were in flight while the owner logged in: they stay.
      commands.push(
        reservedAtMs === undefined
          ? this.client.del(this.key(account.windowKey))
          : this.client.zremrangebyscore(this.key(account.windowKey), '-inf', reservedAtMs),
        this.client.del(this.key(account.lockKey), this.key(account.lockoutCountKey)),
      );
    }

    await this.guarded('settle', () => Promise.all(commands));
  }

  async rememberFamiliarSource(normalizedUsername: string, clientIp: string): Promise<void> {
    const key = this.key(familiarSourceKey(normalizedUsername, clientIp));
    const ttl = this.settings.familiarSourceTtlMs;
    await this.guarded('rememberFamiliarSource', () => this.client.set(key, '1', 'PX', ttl));
  }

  async isFamiliarSource(normalizedUsername: string, clientIp: string): Promise<boolean> {
    const key = this.key(familiarSourceKey(normalizedUsername, clientIp));
    return (await this.guarded('isFamiliarSource', () => this.client.exists(key))) === 1;
  }

  async unlock(normalizedUsername: string): Promise<{ refilled: boolean }> {
    const tiers = TIERS.map((tier) => accountKeys(normalizedUsername, tier));
    const lockouts = tiers.flatMap((tier) => [tier.lockKey, tier.lockoutCountKey]);
    const marker = this.key(unlockMarkerKey(normalizedUsername));
    const window = this.settings.loginFailureWindowMs;

    return this.guarded('unlock', async () => {
      await this.client.del(...lockouts.map((key) => this.key(key)));

      // An attacker who can trigger unlocks (or an admin who repeats one) must not turn them into
      // fresh guesses: the failure windows are emptied at most once per window.
      const marked = await this.client.set(marker, '1', 'PX', window, 'NX');
      if (marked !== 'OK') {
        return { refilled: false };
      }
      await this.client.del(...tiers.map((tier) => this.key(tier.windowKey)));
      return { refilled: true };
    });
  }

  async block(subject: string, durationMs: number): Promise<void> {
    const key = this.key(blockKey(subject));
    const ms = Math.max(1, Math.ceil(durationMs));
    await this.guarded('block', () => this.scripted.gatehouseLimiterBlock(key, ms));
  }

  async ping(): Promise<void> {
    await this.guarded('ping', () => this.client.ping());
  }

  async close(): Promise<void> {
    if (!this.ownsClient) {
      return;
    }
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  private async reserveAtOnce(
    plan: AttemptPlan,
    keys: AttemptKeys,
    id: string,
  ): Promise<LimiterDecision> {
    const group = flattenPlan(plan);
    return this.decide(group, await this.runGroup(group, id), keys, id);
  }

  private async reserveGroupByGroup(
    plan: AttemptPlan,
    keys: AttemptKeys,
    id: string,
  ): Promise<LimiterDecision> {
    // Blocks come before every limit in the decision order, whatever group they live in.
    const blocked = await this.findBlock(plan);
    if (blocked) {
      return blocked;
    }

    const reserved: KeyGroup[] = [];
    let decision: LimiterDecision | undefined;
    for (const group of plan.groups) {
      let answer: ScriptAnswer;
      try {
        answer = await this.runGroup(group, id);
      } catch (error) {
        await this.giveBack(reserved, id).catch(() => undefined);
        throw error;
      }
      decision = this.decide(group, answer, keys, id);
      if (!decision.allowed) {
        await this.giveBack(reserved, id, decision.reason === 'locked');
        return decision;
      }
      reserved.push(group);
    }
    // The username group comes last: its clock stamped the account window entry.
    return decision as LimiterDecision;
  }

  private async findBlock(plan: AttemptPlan): Promise<LimiterDecision | undefined> {
    const blocks = plan.groups.flatMap((group) => group.blocks);
    const ttls = await Promise.all(blocks.map((block) => this.client.pttl(this.key(block.key))));
    const index = ttls.findIndex((ttl) => ttl > 0);
    if (index < 0) {
      return undefined;
    }
    const retryAfterSeconds = Math.max(1, Math.ceil(ttls[index] / 1000));
    return { allowed: false, reason: 'blocked', subject: blocks[index].subject, retryAfterSeconds };
  }

  private async runGroup(group: KeyGroup, id: string): Promise<ScriptAnswer> {
    const keys = [
      ...group.blocks.map((block) => block.key),
      ...group.limits.map((limit) => limit.key),
    ];
    const args: Array<string | number> = [
      id,
      group.blocks.length,
      group.limits.length,
      group.account ? '1' : '0',
      ...group.limits.flatMap((limit) => [limit.limit, limit.windowMs]),
    ];
    if (group.account) {
      const { account } = group;
      keys.push(account.windowKey, account.lockKey, account.lockoutCountKey);
      args.push(
        account.limit,
        account.windowMs,
        this.settings.lockoutBaseMs,
        this.settings.lockoutMaxMs,
        lockoutMemoryMs(this.settings),
      );
    }

    const fullKeys = keys.map((key) => this.key(key));
    const answer = await this.scripted.gatehouseLimiterReserve(
      fullKeys.length,
      ...fullKeys,
      ...args,
    );
    return answer as ScriptAnswer;
  }

  private decide(
    group: KeyGroup,
    answer: ScriptAnswer,
    keys: AttemptKeys,
    id: string,
  ): LimiterDecision {
    const [verdict, index, retryAfterSeconds, now] = answer;
    switch (verdict) {
      case 'allowed':
        return { allowed: true, reservation: { id, keys, reservedAtMs: Number(now) } };
      case 'blocked':
        return {
          allowed: false,
          reason: 'blocked',
          subject: group.blocks[index - 1].subject,
          retryAfterSeconds,
        };
      case 'throttled':
        return {
          allowed: false,
          reason: 'throttled',
          limit: group.limits[index - 1].name,
          retryAfterSeconds,
        };
      case 'locked':
        return { allowed: false, reason: 'locked', retryAfterSeconds, lockoutStarted: index === 1 };
      default:
        throw new Error(`RedisLimiterStore: unexpected script answer ${String(verdict)}`);
    }
  }

  /**
   * Returns what earlier groups reserved. A locked attempt keeps its request-rate slots, as it
   * does on a single node, and gives back only its failure-budget slot.
   */
  private async giveBack(groups: KeyGroup[], id: string, keepRequests = false): Promise<void> {
    const keys = groups.flatMap((group) =>
      group.limits
        .filter((limit) => !keepRequests || limit.name === 'ip_failure_budget')
        .map((limit) => this.key(limit.key)),
    );
    await Promise.all(keys.map((key) => this.client.zrem(key, id)));
  }

  private async guarded<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new LimiterUnavailableError(`limiter store ${operation} failed: ${detail}`, {
        cause: error,
      });
    }
  }
}

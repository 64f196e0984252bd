import { randomBytes, randomInt } from 'node:crypto';
import type {
  AttemptKeys,
  LimiterDecision,
  LimiterSettings,
  LimiterStore,
  Reservation,
} from '../../src/throttling/limiter.types';

const MINUTE = 60_000;

/** The defaults of CONTRACT.md, "Configuration", with overrides. */
export function limiterSettings(overrides: Partial<LimiterSettings> = {}): LimiterSettings {
  return {
    loginMaxFailures: 5,
    loginFailureWindowMs: 15 * MINUTE,
    lockoutBaseMs: MINUTE,
    lockoutMaxMs: 15 * MINUTE,
    ipLoginLimit: 300,
    ipLoginWindowMs: MINUTE,
    ipUserLimit: 10,
    ipUserWindowMs: 15 * MINUTE,
    certLoginLimit: 30,
    certLoginWindowMs: 15 * MINUTE,
    ipFailureBudget: 100,
    ipFailureWindowMs: 24 * 60 * MINUTE,
    familiarSourceTtlMs: 30 * 24 * 60 * MINUTE,
    ...overrides,
  };
}

export function randomUsername(): string {
  return `user-${randomBytes(6).toString('hex')}`;
}

/** A random address in 10.0.0.0/8; distinct per call for all practical purposes. */
export function randomIpv4(): string {
  return `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
}

function hextet(): string {
  return randomInt(0x10000).toString(16);
}

/** A random /48 such as `2001:db8:1a2b`, written as its first three hextets. */
export function randomIpv6Site(): string {
  return `2001:db8:${hextet()}`;
}

/** An IPv6 client in the given /48 and subnet, with the prefixes the guard would compute. */
export function ipv6Source(
  site: string,
  subnet: string,
): Pick<AttemptKeys, 'clientIp' | 'ipPrefixes'> {
  const clientIp = `${site}:${subnet}:${hextet()}:${hextet()}:${hextet()}:${hextet()}`;
  return { clientIp, ipPrefixes: [`${site}:${subnet}::/64`, `${site}::/48`] };
}

export function randomFingerprint(): string {
  return randomBytes(32).toString('hex');
}

export function attemptKeys(overrides: Partial<AttemptKeys> = {}): AttemptKeys {
  return {
    clientIp: randomIpv4(),
    ipPrefixes: [],
    normalizedUsername: randomUsername(),
    tier: 'unfamiliar',
    ipExempt: false,
    ...overrides,
  };
}

export function expectAllowed(decision: LimiterDecision): Reservation {
  if (!decision.allowed) {
    throw new Error(`expected the attempt to be allowed, got ${JSON.stringify(decision)}`);
  }
  return decision.reservation;
}

/** Reserves and, when allowed, settles as a wrong password; returns the decision. */
export async function failOnce(store: LimiterStore, keys: AttemptKeys): Promise<LimiterDecision> {
  const decision = await store.reserve(keys);
  if (decision.allowed) {
    await store.settle(decision.reservation, 'failure');
  }
  return decision;
}

export async function succeedOnce(store: LimiterStore, keys: AttemptKeys): Promise<Reservation> {
  const reservation = expectAllowed(await store.reserve(keys));
  await store.settle(reservation, 'success');
  return reservation;
}

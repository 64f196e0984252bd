import { GatehouseError } from '../common/gatehouse.error';
import {
  checkCertificateConfirmation,
  checkIssuedAfter,
  issuedAtSeconds,
  readAccessTokenClaims,
} from './access-token';

const THUMBPRINT_A = 'a'.repeat(43);
const THUMBPRINT_B = 'b'.repeat(43);

function payload(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: 'gatehouse',
    aud: 'gatehouse',
    sub: '0192f5a4-7c1e-7d3a-9b2f-3c4d5e6f7a8b',
    username: 'alice',
    roles: ['reader'],
    amr: ['pwd'],
    jti: 'AAAAAAAAAAAAAAAAAAAAAAAA',
    iat: 1_700_000_000,
    exp: 1_700_000_900,
    ...overrides,
  };
}

function refusal(check: () => unknown): GatehouseError {
  try {
    check();
  } catch (error) {
    return error as GatehouseError;
  }
  throw new Error('expected a refusal');
}

describe('readAccessTokenClaims', () => {
  it('reads a well-formed payload', () => {
    expect(readAccessTokenClaims(payload({ cnf: { 'x5t#S256': THUMBPRINT_A } }))).toEqual(
      payload({ cnf: { 'x5t#S256': THUMBPRINT_A } }),
    );
  });

  it.each([
    ['an audience array', { aud: ['gatehouse', 'other'] }],
    ['a sub that is no user id', { sub: 'alice' }],
    ['a missing jti', { jti: undefined }],
    ['a fractional iat', { iat: 1.5 }],
    ['roles that are not strings', { roles: [1] }],
    ['an empty amr', { amr: [] }],
    ['an amr we never issue', { amr: ['pwd', 'otp'] }],
    ['a cnf with another confirmation method', { cnf: { jkt: THUMBPRINT_A } }],
    ['a cnf with an extra member', { cnf: { 'x5t#S256': THUMBPRINT_A, jkt: 'x' } }],
    ['a cnf thumbprint of the wrong length', { cnf: { 'x5t#S256': 'abc' } }],
  ])('refuses %s', (_name, overrides) => {
    expect(refusal(() => readAccessTokenClaims(payload(overrides)))).toMatchObject({
      code: 'invalid_token',
    });
  });
});

describe('checkCertificateConfirmation', () => {
  const bound = { cnf: { 'x5t#S256': THUMBPRINT_A } };

  it('accepts a bound token with its own certificate', () => {
    expect(() => checkCertificateConfirmation(bound, THUMBPRINT_A)).not.toThrow();
  });

  it('refuses a bound token with another certificate or none', () => {
    expect(refusal(() => checkCertificateConfirmation(bound, THUMBPRINT_B)).code).toBe(
      'invalid_token',
    );
    expect(refusal(() => checkCertificateConfirmation(bound, null)).code).toBe('invalid_token');
  });

  it('accepts an unbound token with or without a certificate', () => {
    expect(() => checkCertificateConfirmation({}, null)).not.toThrow();
    expect(() => checkCertificateConfirmation({}, THUMBPRINT_B)).not.toThrow();
  });
});

describe('issuedAtSeconds', () => {
  const now = Date.UTC(2025, 0, 1, 12, 0, 10, 800);

  it('is the current second when tokens were never invalidated', () => {
    expect(issuedAtSeconds(now)).toBe(Math.floor(now / 1000));
    expect(issuedAtSeconds(now, new Date(0))).toBe(Math.floor(now / 1000));
  });

  it('moves to the next second after an invalidation earlier in the same second', () => {
    const validAfter = new Date(now - 500);

    const iat = issuedAtSeconds(now, validAfter);

    expect(iat).toBe(Math.floor(now / 1000) + 1);
    expect(() => checkIssuedAfter({ iat }, validAfter)).not.toThrow();
  });

  it('leaves a token issued before a later invalidation stale', () => {
    const iat = issuedAtSeconds(now);

    expect(refusal(() => checkIssuedAfter({ iat }, new Date(now + 100))).code).toBe(
      'invalid_token',
    );
  });
});

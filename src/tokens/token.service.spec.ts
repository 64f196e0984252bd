import { generateKeyPairSync } from 'node:crypto';
import { decodeJwt } from 'jose';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { VerifiedCertificate } from '../mtls/verified-certificate';
import { SigningKeysService } from './signing-keys.service';
import { TokenClock } from './token-clock';
import { CLOCK_TOLERANCE_SECONDS, TokenService } from './token.service';

const USER = {
  id: '0192f5a4-7c1e-7d3a-9b2f-3c4d5e6f7a8b',
  username: 'alice',
  roles: ['reader'],
};
const CERTIFICATE = { thumbprintS256: 'q'.repeat(43) } as VerifiedCertificate;
const CONFIG = {
  tokenIssuer: 'https://gatehouse.test',
  tokenAudience: 'api',
  tokenTtlMs: 15 * 60 * 1000,
} as AppConfig;

class FakeClock implements TokenClock {
  constructor(public nowMs = Date.UTC(2025, 5, 1, 9, 0, 0)) {}

  now(): number {
    return this.nowMs;
  }

  advanceSeconds(seconds: number): void {
    this.nowMs += seconds * 1000;
  }
}

interface SubjectState {
  disabled: boolean;
  tokens_valid_after: Date;
  revoked: boolean;
}

function setUp() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const keys = {
    signingKey: async () => ({ kid: 'key-1', privateKey }),
    verificationKey: async (kid: string) => (kid === 'key-1' ? publicKey : null),
  };
  const state: { row: SubjectState | null; failure: Error | null } = {
    row: { disabled: false, tokens_valid_after: new Date(0), revoked: false },
    failure: null,
  };
  const query = jest.fn(async () => {
    if (state.failure) {
      throw state.failure;
    }
    return state.row === null ? [] : [state.row];
  });
  const clock = new FakeClock();
  const tokens = new TokenService(
    { query } as unknown as DataSource,
    keys as unknown as SigningKeysService,
    CONFIG,
    clock,
  );
  return { tokens, clock, state, query };
}

describe('TokenService', () => {
  it('issues a token that lives TOKEN_TTL and no longer', async () => {
    const { tokens, clock } = setUp();
    const { access_token, expires_in } = await tokens.issue({ user: USER, amr: ['pwd'] });

    clock.advanceSeconds(expires_in + CLOCK_TOLERANCE_SECONDS - 1);
    await expect(tokens.verify(access_token, null)).resolves.toMatchObject({ sub: USER.id });

    clock.advanceSeconds(2);
    await expect(tokens.verify(access_token, null)).rejects.toMatchObject({
      code: 'invalid_token',
    });
    expect(expires_in).toBe(900);
  });

  it('binds a token to the certificate of the login', async () => {
    const { tokens } = setUp();

    const { access_token } = await tokens.issue({
      user: USER,
      certificate: CERTIFICATE,
      amr: ['pwd', 'mtls', 'pwd'],
    });

    expect(decodeJwt(access_token)).toMatchObject({
      amr: ['pwd', 'mtls'],
      cnf: { 'x5t#S256': CERTIFICATE.thumbprintS256 },
    });
    await expect(tokens.verify(access_token, CERTIFICATE.thumbprintS256)).resolves.toBeDefined();
    await expect(tokens.verify(access_token, null)).rejects.toMatchObject({
      code: 'invalid_token',
    });
  });

  it('will not claim mtls without a certificate, nor issue without a method', async () => {
    const { tokens } = setUp();

    await expect(tokens.issue({ user: USER, amr: ['mtls'] })).rejects.toThrow();
    await expect(tokens.issue({ user: USER, amr: [] })).rejects.toThrow();
  });

  it('refuses a token issued in the future by a clock far ahead', async () => {
    const { tokens, clock } = setUp();
    clock.advanceSeconds(60);
    const { access_token } = await tokens.issue({ user: USER, amr: ['pwd'] });

    clock.advanceSeconds(-60);

    await expect(tokens.verify(access_token, null)).rejects.toMatchObject({
      code: 'invalid_token',
      options: { detail: 'token is issued in the future' },
    });
  });

  it.each([
    ['revoked', { revoked: true }, /revoked/],
    ['of a disabled user', { disabled: true }, /disabled/],
    ['issued before tokens_valid_after', { tokens_valid_after: new Date(8.64e15) }, /before/],
  ])('refuses a token %s', async (_name, change, reason) => {
    const { tokens, state } = setUp();
    const { access_token } = await tokens.issue({ user: USER, amr: ['pwd'] });

    state.row = { ...state.row!, ...change };

    await expect(tokens.verify(access_token, null)).rejects.toMatchObject({
      code: 'invalid_token',
      options: { detail: expect.stringMatching(reason) },
    });
  });

  it('refuses a token whose user no longer exists', async () => {
    const { tokens, state } = setUp();
    const { access_token } = await tokens.issue({ user: USER, amr: ['pwd'] });

    state.row = null;

    await expect(tokens.verify(access_token, null)).rejects.toMatchObject({
      code: 'invalid_token',
    });
  });

  it('answers unavailable when the database fails', async () => {
    const { tokens, state } = setUp();
    const { access_token } = await tokens.issue({ user: USER, amr: ['pwd'] });

    state.failure = new Error('connection terminated');

    await expect(tokens.verify(access_token, null)).rejects.toMatchObject({ code: 'unavailable' });
    await expect(tokens.revoke({ jti: 'j'.repeat(24), exp: 1 })).rejects.toMatchObject({
      code: 'unavailable',
    });
  });

  it('records a revocation with the expiry of the token', async () => {
    const { tokens, query } = setUp();

    await tokens.revoke({ jti: 'j'.repeat(24), exp: 1_750_000_000 });

    expect(query).toHaveBeenCalledWith(expect.stringContaining('INSERT INTO revoked_tokens'), [
      'j'.repeat(24),
      1_750_000_000,
    ]);
  });

  it('refuses an oversized token before parsing it', async () => {
    const { tokens, query } = setUp();

    await expect(tokens.verify(`${'a'.repeat(5000)}.b.c`, null)).rejects.toMatchObject({
      code: 'invalid_token',
    });
    expect(query).not.toHaveBeenCalled();
  });
});

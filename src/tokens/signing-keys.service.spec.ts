import { generateKeyPairSync } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { KEY_CACHE_TTL_MS, SigningKeysService } from './signing-keys.service';
import { TokenClock } from './token-clock';

class FakeClock implements TokenClock {
  nowMs = 1_000_000;

  now(): number {
    return this.nowMs;
  }
}

function keyRow(kid: string, active: boolean) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const { x } = publicKey.export({ format: 'jwk' });
  return {
    kid,
    public_jwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig', d: 'never' },
    active,
    private_key_pem: active ? privateKey.export({ format: 'pem', type: 'pkcs8' }) : null,
    created_at: new Date(),
  };
}

function setUp(rows: Array<ReturnType<typeof keyRow>>) {
  const state = { rows, failure: null as Error | null };
  const query = jest.fn(async () => {
    if (state.failure) {
      throw state.failure;
    }
    return state.rows;
  });
  const clock = new FakeClock();
  const service = new SigningKeysService(
    { query } as unknown as DataSource,
    { tokenTtlMs: 900_000 } as AppConfig,
    clock,
  );
  return { service, clock, query, state };
}

describe('SigningKeysService', () => {
  it('reads the database again only when its copy is older than the cache lifetime', async () => {
    const { service, clock, query } = setUp([keyRow('new', true), keyRow('old', false)]);

    await service.signingKey();
    await service.jwks();
    clock.nowMs += KEY_CACHE_TTL_MS - 1;
    await service.verificationKey('old');
    expect(query).toHaveBeenCalledTimes(1);

    clock.nowMs += 1;
    await service.jwks();
    expect(query).toHaveBeenCalledTimes(2);
  });

  it('signs with the active key and verifies with every published one', async () => {
    const { service } = setUp([keyRow('new', true), keyRow('old', false)]);

    expect((await service.signingKey()).kid).toBe('new');
    expect(await service.verificationKey('old')).not.toBeNull();
    expect(await service.verificationKey('new')).not.toBeNull();
  });

  it('publishes the public members only', async () => {
    const { service } = setUp([keyRow('new', true)]);

    const { keys } = await service.jwks();

    expect(Object.keys(keys[0]).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
  });

  it('rereads for an unknown kid at most once a second', async () => {
    const { service, clock, query, state } = setUp([keyRow('old', true)]);
    await service.signingKey();
    clock.nowMs += 1_000;

    state.rows = [keyRow('new', true), ...state.rows];
    expect(await service.verificationKey('new')).not.toBeNull();
    expect(await service.verificationKey('junk')).toBeNull();
    expect(await service.verificationKey('junk')).toBeNull();

    expect(query).toHaveBeenCalledTimes(2);
  });

  it('shares one database read between concurrent callers', async () => {
    const { service, query } = setUp([keyRow('new', true)]);

    await Promise.all([service.jwks(), service.signingKey(), service.verificationKey('new')]);

    expect(query).toHaveBeenCalledTimes(1);
  });

  it('answers unavailable when the key set cannot be read', async () => {
    const { service, state } = setUp([keyRow('new', true)]);

    state.failure = new Error('connection refused');

    await expect(service.jwks()).rejects.toMatchObject({ code: 'unavailable' });
    await expect(service.verificationKey('new')).rejects.toMatchObject({ code: 'unavailable' });
  });
});

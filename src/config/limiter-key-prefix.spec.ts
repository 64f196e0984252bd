import { ConfigError } from './config.error';
import { loadConfig } from './config.loader';

const BASE = { NODE_ENV: 'test', MTLS_MODE: 'off', DATA_DIR: '/tmp/gatehouse-config-spec' };

describe('LIMITER_KEY_PREFIX', () => {
  it('defaults to the prefix every deployment used before it existed', () => {
    expect(loadConfig(BASE).limiterKeyPrefix).toBe('gatehouse:limiter:');
  });

  it('accepts a prefix of its own for a deployment sharing a Redis', () => {
    const config = loadConfig({ ...BASE, LIMITER_KEY_PREFIX: 'tenant-a:limiter:' });
    expect(config.limiterKeyPrefix).toBe('tenant-a:limiter:');
  });

  it.each(['{tenant}:', 'tenant}:', 'has space:', 'x'.repeat(101)])(
    'refuses %p, naming the key',
    (prefix) => {
      expect(() => loadConfig({ ...BASE, LIMITER_KEY_PREFIX: prefix })).toThrow(ConfigError);
      expect(() => loadConfig({ ...BASE, LIMITER_KEY_PREFIX: prefix })).toThrow(
        /LIMITER_KEY_PREFIX/,
      );
    },
  );
});

import { ExecutionContext } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { AccessTokenClaims } from './access-token';
import { AdminGuard, assertAdministrator } from './admin.guard';
import { attachPrincipal } from './authenticated-principal';
import { BearerAuthGuard } from './bearer-auth.guard';

function claims(overrides: Partial<AccessTokenClaims> = {}): AccessTokenClaims {
  return {
    iss: 'gatehouse',
    aud: 'gatehouse',
    sub: '0192f5a4-7c1e-7d3a-9b2f-3c4d5e6f7a8b',
    username: 'root',
    roles: ['admin'],
    amr: ['pwd', 'mtls'],
    jti: 'AAAAAAAAAAAAAAAAAAAAAAAA',
    iat: 1,
    exp: 2,
    cnf: { 'x5t#S256': 'a'.repeat(43) },
    ...overrides,
  };
}

function contextFor(request: object): ExecutionContext {
  return {
    switchToHttp: () => ({ getRequest: () => request }),
  } as unknown as ExecutionContext;
}

describe('assertAdministrator', () => {
  it('accepts an admin who used a password and a bound certificate', () => {
    expect(() => assertAdministrator(claims(), 'direct')).not.toThrow();
    expect(() => assertAdministrator(claims(), 'proxy')).not.toThrow();
  });

  it.each([
    ['a user without the admin role', claims({ roles: ['reader'] })],
    ['a password-only admin', claims({ amr: ['pwd'], cnf: undefined })],
    ['a certificate-only admin', claims({ amr: ['mtls'] })],
    ['an admin token bound to no certificate', claims({ cnf: undefined })],
  ])('refuses %s outside off mode', (_name, adminClaims) => {
    expect(() => assertAdministrator(adminClaims, 'direct')).toThrow(
      expect.objectContaining({ code: 'forbidden' }),
    );
  });

  it('accepts a password-only admin in off mode, and nothing less', () => {
    expect(() =>
      assertAdministrator(claims({ amr: ['pwd'], cnf: undefined }), 'off'),
    ).not.toThrow();
    expect(() => assertAdministrator(claims({ amr: ['mtls'] }), 'off')).toThrow(
      expect.objectContaining({ code: 'forbidden' }),
    );
    expect(() => assertAdministrator(claims({ roles: [] }), 'off')).toThrow(
      expect.objectContaining({ code: 'forbidden' }),
    );
  });
});

describe('AdminGuard', () => {
  const config = { mtlsMode: 'direct' } as AppConfig;

  it('runs the bearer check itself when no earlier guard did', async () => {
    const request = { raw: {} };
    const bearer = {
      canActivate: jest.fn(async () => {
        attachPrincipal(request, { claims: claims(), certificate: null });
        return true;
      }),
    };
    const guard = new AdminGuard(bearer as unknown as BearerAuthGuard, config);

    await expect(guard.canActivate(contextFor(request))).resolves.toBe(true);
    expect(bearer.canActivate).toHaveBeenCalledTimes(1);
  });

  it('relies on the principal an earlier bearer guard recorded', async () => {
    const request = { raw: {} };
    attachPrincipal(request, { claims: claims({ roles: ['reader'] }), certificate: null });
    const bearer = { canActivate: jest.fn() };
    const guard = new AdminGuard(bearer as unknown as BearerAuthGuard, config);

    await expect(guard.canActivate(contextFor(request))).rejects.toMatchObject({
      code: 'forbidden',
    });
    expect(bearer.canActivate).not.toHaveBeenCalled();
  });

  it('refuses when the bearer check refuses', async () => {
    const bearer = {
      canActivate: jest.fn(async () => {
        throw Object.assign(new Error('invalid'), { code: 'invalid_token' });
      }),
    };
    const guard = new AdminGuard(bearer as unknown as BearerAuthGuard, config);

    await expect(guard.canActivate(contextFor({ raw: {} }))).rejects.toMatchObject({
      code: 'invalid_token',
    });
  });
});

import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AppConfig, MtlsMode } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { GatehouseError } from '../common/gatehouse.error';
import { AccessTokenClaims } from './access-token';
import { authenticatedPrincipal, findAuthenticatedPrincipal } from './authenticated-principal';
import { BearerAuthGuard } from './bearer-auth.guard';

export const ADMIN_ROLE = 'admin';

/**
 * Admin means role `admin` and a token earned with both a password and a certificate, bound to
 * the certificate this request presents. In `off` mode there are no certificates, so a
 * password-only admin token is accepted (the start-up warning says so).
 */
export function assertAdministrator(claims: AccessTokenClaims, mode: MtlsMode): void {
  if (!claims.roles.includes(ADMIN_ROLE)) {
    throw new GatehouseError('forbidden', { detail: 'the user does not have the admin role' });
  }
  if (!claims.amr.includes('pwd')) {
    throw new GatehouseError('forbidden', { detail: 'admin token was not earned with a password' });
  }
  if (mode !== 'off' && (!claims.amr.includes('mtls') || claims.cnf === undefined)) {
    throw new GatehouseError('forbidden', {
      detail: 'admin token was not earned with a certificate bound to it',
    });
  }
}

/**
 * Requires an administrator. Runs the bearer check itself when no earlier guard did, so
 * `@UseGuards(AdminGuard)` alone is never weaker than with BearerAuthGuard in front.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(
    private readonly bearer: BearerAuthGuard,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    if (findAuthenticatedPrincipal(request) === null) {
      await this.bearer.canActivate(context);
    }
    assertAdministrator(authenticatedPrincipal(request).claims, this.config.mtlsMode);
    return true;
  }
}

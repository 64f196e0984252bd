import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GatehouseError } from '../common/gatehouse.error';
import { ClientCertificateResolver } from '../mtls/client-certificate.resolver';
import { CLIENT_CERTIFICATE_RESOLVER } from '../mtls/mtls.module';
import { VerifiedCertificate } from '../mtls/verified-certificate';
import { attachPrincipal } from './authenticated-principal';
import { readBearerToken } from './authorization-header';
import { TokenService } from './token.service';

export { authenticatedPrincipal } from './authenticated-principal';

/**
 * Admits a request carrying a valid bearer token, checked against the certificate of this very
 * request, and records its principal (read it with `authenticatedPrincipal(request)`). Denials
 * throw `invalid_token`, answered 401 with WWW-Authenticate; it never returns false.
 */
@Injectable()
export class BearerAuthGuard implements CanActivate {
  constructor(
    private readonly tokens: TokenService,
    @Inject(CLIENT_CERTIFICATE_RESOLVER) private readonly resolver: ClientCertificateResolver,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const token = readBearerToken(request.raw);
    const certificate = this.presentedCertificate(request);
    const claims = await this.tokens.verify(token, certificate?.thumbprintS256 ?? null);
    attachPrincipal(request, { claims, certificate });
    return true;
  }

  private presentedCertificate(request: FastifyRequest): VerifiedCertificate | null {
    const resolution = this.resolver.resolve(request.raw);
    switch (resolution.status) {
      case 'verified':
        return resolution.certificate;
      case 'absent':
        return null;
      default:
        // Forged identity headers or a certificate that failed verification: a caller in that
        // state is not trusted with any token, bound or not.
        throw new GatehouseError('invalid_token', {
          detail: `client certificate ${resolution.status}: ${resolution.detail}`,
        });
    }
  }
}

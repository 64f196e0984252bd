import { CanActivate, ExecutionContext, Inject, Injectable, Logger } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { attemptOf } from '../audit/attempt-context';
import { invalidCredentials, invalidRequest } from '../common/gatehouse.error';
import { escapeForLog } from '../common/logging';
import { ClientCertificateResolver } from './client-certificate.resolver';
import { CLIENT_CERTIFICATE_RESOLVER } from './mtls.module';

/**
 * Resolves the request's client certificate onto its attempt. Forged identity headers and
 * forwarded certificates that fail verification are refused here, before throttling; a
 * certificate from the handshake that fails is left for the login strategy to answer.
 */
@Injectable()
export class ClientCertificateGuard implements CanActivate {
  private readonly logger = new Logger(ClientCertificateGuard.name);

  constructor(
    @Inject(CLIENT_CERTIFICATE_RESOLVER) private readonly resolver: ClientCertificateResolver,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const attempt = attemptOf(request);
    const resolution = this.resolver.resolve(request.raw);
    if (resolution.status === 'malformed') {
      throw invalidRequest(resolution.detail, 'certificate headers are malformed');
    }
    if (attempt) {
      attempt.certificate = resolution;
    }
    if (resolution.status === 'refused' && resolution.stage === 'forwarded') {
      this.logger.warn({
        requestId: request.id,
        event: 'proxy_header_refused',
        reason: resolution.reason,
        detail: escapeForLog(resolution.detail),
        msg: 'forwarded certificate identity refused',
      });
      throw invalidCredentials(resolution.reason, resolution.detail);
    }
    return true;
  }
}

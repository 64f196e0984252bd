import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { invalidRequest } from '../common/gatehouse.error';
import { ClientCertificateResolver } from '../mtls/client-certificate.resolver';
import { CLIENT_CERTIFICATE_RESOLVER } from '../mtls/mtls.module';
import { InvalidUsernameError, normalizeUsername } from '../users/username';
import { startAttempt } from './attempt-factory';
import { parseLoginBody } from './login-body';

/**
 * Bound first on POST /auth/login: checks the request's shape before any lookup or hash.
 * Credentials come from the body only (passport-local would fall back to the query string by
 * itself), and the username is normalised here, once, for every later lookup and counter.
 */
@Injectable()
export class LoginRequestGuard implements CanActivate {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(CLIENT_CERTIFICATE_RESOLVER) private readonly resolver: ClientCertificateResolver,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const attempt = startAttempt(request, 'password', this.resolver);
    if (request.raw.url?.includes('?')) {
      throw invalidRequest('login takes no query string', 'credentials belong in the body');
    }
    if (request.headers.authorization !== undefined) {
      throw invalidRequest('credentials in a header', 'credentials belong in the body');
    }
    const credentials = parseLoginBody(request.body, request.headers['content-type'], this.config);
    attempt.usernameLength = [...credentials.username].length;
    try {
      attempt.normalizedUsername = normalizeUsername(
        credentials.username,
        this.config.usernameMaxBytes,
      );
    } catch (error) {
      if (error instanceof InvalidUsernameError) {
        throw invalidRequest(error.message);
      }
      throw error;
    }
    request.body = credentials;
    return true;
  }
}

/** Bound first on POST /auth/certificate: no credentials in the body, only the certificate. */
@Injectable()
export class CertificateLoginRequestGuard implements CanActivate {
  constructor(
    @Inject(CLIENT_CERTIFICATE_RESOLVER) private readonly resolver: ClientCertificateResolver,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    startAttempt(request, 'certificate', this.resolver);
    if (request.raw.url?.includes('?')) {
      throw invalidRequest('certificate login takes no query string');
    }
    const body = request.body;
    if (Buffer.isBuffer(body) && body.length > 0 && body.toString('utf8').trim() !== '{}') {
      throw invalidRequest('certificate login takes no body');
    }
    return true;
  }
}

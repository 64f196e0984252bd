import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { Strategy as PassportBaseStrategy } from 'passport-strategy';
import { attemptOf } from '../audit/attempt-context';
import { invalidRequest } from '../common/gatehouse.error';
import { User } from '../users/user.entity';
import { LoginService } from './login.service';

type Verify = (request: unknown, done: (error: unknown, user?: unknown) => void) => void;

/** A Passport strategy that authenticates with the request's verified client certificate. */
class CertificateStrategy extends PassportBaseStrategy {
  name = 'client-certificate';

  constructor(private readonly verify: Verify) {
    super();
  }

  override authenticate(request: unknown): void {
    this.verify(request, (error, user) => {
      if (error) {
        this.error(error as Error);
      } else if (!user) {
        this.fail(401);
      } else {
        this.success(user);
      }
    });
  }
}

/**
 * Certificate to user through the stored binding (SHA-256 fingerprint), never by subject name;
 * only bindings that allow certificate-only login succeed.
 */
@Injectable()
export class ClientCertificateStrategy extends PassportStrategy(
  CertificateStrategy,
  'client-certificate',
) {
  constructor(private readonly login: LoginService) {
    super();
  }

  async validate(request: FastifyRequest): Promise<User> {
    const attempt = attemptOf(request);
    if (!attempt) {
      throw invalidRequest('certificate login reached the strategy without an attempt');
    }
    return this.login.authenticateCertificate(attempt);
  }
}

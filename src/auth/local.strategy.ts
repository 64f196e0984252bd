import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { Strategy } from 'passport-local';
import { attemptOf } from '../audit/attempt-context';
import { invalidRequest } from '../common/gatehouse.error';
import { User } from '../users/user.entity';
import { LoginService } from './login.service';

/**
 * passport-local over the body that LoginRequestGuard already checked and normalised. The
 * username it passes is ignored in favour of the normalised one on the attempt.
 */
@Injectable()
export class LocalStrategy extends PassportStrategy(Strategy, 'local') {
  constructor(private readonly login: LoginService) {
    super({ usernameField: 'username', passwordField: 'password', passReqToCallback: true });
  }

  async validate(request: FastifyRequest, _username: string, password: string): Promise<User> {
    const attempt = attemptOf(request);
    if (!attempt?.normalizedUsername) {
      throw invalidRequest('login reached the strategy without a checked body');
    }
    return this.login.authenticatePassword(attempt, password);
  }
}

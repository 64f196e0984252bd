import { Controller, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { attemptOf } from '../audit/attempt-context';
import { GatehouseError } from '../common/gatehouse.error';
import { ClientCertificateGuard } from '../mtls/client-certificate.guard';
import { LoginThrottlerGuard } from '../throttling/login-throttler.guard';
import { AuthenticationMethod, IssuedToken } from '../tokens/access-token';
import { TokenService } from '../tokens/token.service';
import { User } from '../users/user.entity';
import { AttemptFinisher } from './attempt-finisher.service';
import { CertificateLoginRequestGuard, LoginRequestGuard } from './login-request.guard';

type AuthenticatedRequest = FastifyRequest & { user?: User };

/**
 * The login routes. Guards run in the order the decision table gives: request shape, forwarded
 * certificate, throttling and lockout, then passport (certificate policy and password).
 */
@Controller('auth')
export class AuthController {
  constructor(
    private readonly finisher: AttemptFinisher,
    private readonly tokens: TokenService,
  ) {}

  @Post('login')
  @HttpCode(200)
  @UseGuards(LoginRequestGuard, ClientCertificateGuard, LoginThrottlerGuard, AuthGuard('local'))
  login(@Req() request: AuthenticatedRequest): Promise<IssuedToken> {
    return this.succeed(request, ['pwd']);
  }

  @Post('certificate')
  @HttpCode(200)
  @UseGuards(
    CertificateLoginRequestGuard,
    ClientCertificateGuard,
    LoginThrottlerGuard,
    AuthGuard('client-certificate'),
  )
  certificate(@Req() request: AuthenticatedRequest): Promise<IssuedToken> {
    return this.succeed(request, ['mtls']);
  }

  private async succeed(
    request: AuthenticatedRequest,
    factors: AuthenticationMethod[],
  ): Promise<IssuedToken> {
    const attempt = attemptOf(request);
    const user = request.user;
    if (!attempt || !user) {
      throw new GatehouseError('unavailable', { detail: 'login finished without an attempt' });
    }
    const certificate =
      attempt.certificate?.status === 'verified' ? attempt.certificate.certificate : undefined;
    // The certificate counts as a factor only when the policy checked its binding to this user.
    const amr: AuthenticationMethod[] =
      attempt.certificateBound && !factors.includes('mtls') ? [...factors, 'mtls'] : factors;
    const token = await this.tokens.issue({ user, certificate, amr });
    if (!(await this.finisher.finish(attempt, 'success'))) {
      throw new GatehouseError('unavailable', { outcome: 'unavailable' });
    }
    return token;
  }
}

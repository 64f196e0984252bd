import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { TokensModule } from '../tokens/tokens.module';
import { AttemptFinisher } from './attempt-finisher.service';
import { AuthController } from './auth.controller';
import { ClientCertificateStrategy } from './client-certificate.strategy';
import { LocalStrategy } from './local.strategy';
import { LoginService } from './login.service';
import { CertificateLoginRequestGuard, LoginRequestGuard } from './login-request.guard';
import { ResponsePadding } from './response-padding';
import { ClientCertificateGuard } from '../mtls/client-certificate.guard';
import { FailedPasswordTagger } from '../detection/failed-password-tagger';
import { Argon2PasswordHasher } from '../users/password-hasher';

/**
 * Seeds the padding with one measured verification, so the first 401s after a start (before any
 * real password check was timed) are padded too. It uses its own hasher so the hash metrics
 * count only real password checks.
 */
async function calibratedPadding(): Promise<ResponsePadding> {
  const hasher = new Argon2PasswordHasher();
  const sampleHash = await hasher.hash('calibration');
  const started = process.hrtime.bigint();
  await hasher.verify(sampleHash, 'not the calibration password');
  return new ResponsePadding(Number(process.hrtime.bigint() - started) / 1e6);
}

@Module({
  imports: [PassportModule, TokensModule],
  controllers: [AuthController],
  providers: [
    AttemptFinisher,
    FailedPasswordTagger,
    LoginService,
    LocalStrategy,
    ClientCertificateStrategy,
    LoginRequestGuard,
    CertificateLoginRequestGuard,
    ClientCertificateGuard,
    { provide: ResponsePadding, useFactory: calibratedPadding },
  ],
  exports: [AttemptFinisher, LoginService],
})
export class AuthModule {}

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

@Module({
  imports: [PassportModule, TokensModule],
  controllers: [AuthController],
  providers: [
    AttemptFinisher,
    LoginService,
    LocalStrategy,
    ClientCertificateStrategy,
    LoginRequestGuard,
    CertificateLoginRequestGuard,
    ClientCertificateGuard,
    { provide: ResponsePadding, useValue: new ResponsePadding() },
  ],
  exports: [AttemptFinisher, LoginService],
})
export class AuthModule {}

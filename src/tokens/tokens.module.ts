import { Module } from '@nestjs/common';
import { AdminGuard } from './admin.guard';
import { BearerAuthGuard } from './bearer-auth.guard';
import { JwksController } from './jwks.controller';
import { SigningKeysService } from './signing-keys.service';
import { TokenService } from './token.service';
import { TokensController } from './tokens.controller';

export { rotateSigningKeys } from './signing-keys.store';

/**
 * Access tokens: signing keys, issue and verification, the bearer and admin guards, and the
 * /auth/me, /auth/verify, /auth/logout and JWKS endpoints. Needs TypeORM's DataSource
 * (TypeOrmModule.forRoot*), APP_CONFIG and CLIENT_CERTIFICATE_RESOLVER from the root module;
 * TOKEN_CLOCK is optional.
 */
@Module({
  controllers: [TokensController, JwksController],
  providers: [SigningKeysService, TokenService, BearerAuthGuard, AdminGuard],
  exports: [SigningKeysService, TokenService, BearerAuthGuard, AdminGuard],
})
export class TokensModule {}

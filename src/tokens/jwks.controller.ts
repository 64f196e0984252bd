import { Controller, Get, Header } from '@nestjs/common';
import { PublicSigningJwk } from './signing-keys.store';
import { SigningKeysService } from './signing-keys.service';

/**
 * Public signing keys (RFC 7517 JWK Set). Cached briefly by clients: a rotation publishes the new
 * key at once, and verifiers refetch when they meet an unknown kid.
 */
@Controller('.well-known')
export class JwksController {
  constructor(private readonly signingKeys: SigningKeysService) {}

  @Get('jwks.json')
  @Header('Cache-Control', 'public, max-age=60')
  jwks(): Promise<{ keys: PublicSigningJwk[] }> {
    return this.signingKeys.jwks();
  }
}

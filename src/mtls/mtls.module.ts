import { DynamicModule, Global, Module } from '@nestjs/common';
import { ClientCertificateResolver, MtlsSettings } from './client-certificate.resolver';

export const CLIENT_CERTIFICATE_RESOLVER = Symbol('CLIENT_CERTIFICATE_RESOLVER');

/** Provides the resolver of each request's client certificate and client address. */
@Global()
@Module({})
export class MtlsModule {
  static forRoot(settings: MtlsSettings): DynamicModule {
    return {
      module: MtlsModule,
      providers: [
        {
          provide: CLIENT_CERTIFICATE_RESOLVER,
          useValue: new ClientCertificateResolver(settings),
        },
      ],
      exports: [CLIENT_CERTIFICATE_RESOLVER],
    };
  }
}

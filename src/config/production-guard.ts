import * as fs from 'node:fs';
import { AppConfig } from './app-config';
import { ConfigError } from './config.error';

function fileMissing(filePath: string | undefined): boolean {
  return filePath === undefined || !fs.existsSync(filePath);
}

/**
 * Production guard rails: each unsafe choice stops the start unless ALLOW_UNSAFE names it.
 * Outside production they are allowed, and the start-up log warns about them instead.
 */
export function assertProductionSafety(config: AppConfig): void {
  if (!config.production) {
    return;
  }
  const allowed = config.allowUnsafe;
  if (config.databaseUrl === undefined && !allowed.has('embedded')) {
    throw new ConfigError(
      'DATABASE_URL',
      'is required in production (the embedded database is for development; ALLOW_UNSAFE=embedded)',
    );
  }
  if (config.mtlsMode === 'off' && !allowed.has('mtls_off')) {
    throw new ConfigError('MTLS_MODE', 'off is refused in production (ALLOW_UNSAFE=mtls_off)');
  }
  const tlsListener =
    config.mtlsMode === 'direct' ||
    (config.mtlsMode === 'proxy' && (config.trustedProxyCerts !== '' || config.tlsCertFile));
  if (tlsListener && !allowed.has('missing_tls')) {
    const files: Array<[string, string | undefined]> = [
      ['TLS_CERT_FILE', config.tlsCertFile],
      ['TLS_KEY_FILE', config.tlsKeyFile],
    ];
    if (config.mtlsMode === 'direct' || config.trustedProxyCerts !== '') {
      files.push(['TLS_CA_FILE', config.tlsCaFile]);
    }
    for (const [key, filePath] of files) {
      if (fileMissing(filePath)) {
        throw new ConfigError(
          key,
          'names no readable file, required in production (ALLOW_UNSAFE=missing_tls)',
        );
      }
    }
  }
  if (
    config.mtlsMode === 'proxy' &&
    config.trustedProxyCerts === '' &&
    !allowed.has('proxy_ip_trust')
  ) {
    throw new ConfigError(
      'TRUSTED_PROXY_CERTS',
      'is required in production proxy mode; trusting proxies by address alone needs ' +
        'ALLOW_UNSAFE=proxy_ip_trust',
    );
  }
}

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { AppConfig } from '../config/app-config';
import { ConfigError } from '../config/config.error';
import { ensureDevelopmentPki } from '../pki/dev-pki';

/** PEM material of the listener and the CA bundle client certificates must chain to. */
export interface TlsMaterial {
  /** Whether the public listener speaks TLS. */
  listenerTls: boolean;
  cert?: string;
  key?: string;
  ca?: string;
  /** Set when the development PKI under DATA_DIR/pki is in use. */
  developmentPkiDir?: string;
}

function readRequired(key: string, filePath: string | undefined): string {
  if (filePath === undefined) {
    throw new ConfigError(key, 'is required');
  }
  try {
    return fs.readFileSync(filePath, 'utf8');
  } catch {
    throw new ConfigError(key, 'names a file that cannot be read');
  }
}

/**
 * Direct mode uses TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE; outside production (or in it with
 * ALLOW_UNSAFE=missing_tls), with none of them set, it creates (once) and reuses a development CA
 * and server certificate under DATA_DIR/pki. Proxy mode listens over TLS when it has a certificate
 * or pins proxy certificates, and always needs the CA bundle to verify forwarded certificates.
 * `off` has no TLS at all.
 */
export async function resolveTlsMaterial(
  config: AppConfig,
  logger: Logger,
): Promise<TlsMaterial | undefined> {
  if (config.mtlsMode === 'off') {
    return undefined;
  }
  const noFiles = !config.tlsCertFile && !config.tlsKeyFile && !config.tlsCaFile;
  // Production reaches this without files only when ALLOW_UNSAFE names missing_tls.
  const developmentPki = !config.production || config.allowUnsafe.has('missing_tls');
  if (config.mtlsMode === 'direct' && noFiles && developmentPki) {
    const directory = path.join(config.dataDir, 'pki');
    const pki = await ensureDevelopmentPki(directory);
    if (pki.createdCertificateAuthority) {
      logger.warn({ directory }, 'created a development CA; keep DATA_DIR private');
    }
    return {
      listenerTls: true,
      cert: fs.readFileSync(pki.serverCertificate, 'utf8'),
      key: fs.readFileSync(pki.serverKey, 'utf8'),
      ca: fs.readFileSync(pki.caCertificate, 'utf8'),
      developmentPkiDir: directory,
    };
  }
  const ca = readRequired('TLS_CA_FILE', config.tlsCaFile);
  const listenerTls =
    config.mtlsMode === 'direct' || config.trustedProxyCerts !== '' || Boolean(config.tlsCertFile);
  if (!listenerTls) {
    return { listenerTls: false, ca };
  }
  return {
    listenerTls: true,
    cert: readRequired('TLS_CERT_FILE', config.tlsCertFile),
    key: readRequired('TLS_KEY_FILE', config.tlsKeyFile),
    ca,
  };
}

/** A certificate and its private key, both PEM (the key as PKCS#8). */
export interface CertificateWithKey {
  certificatePem: string;
  privateKeyPem: string;
}

/** The signing CA. Its key never leaves the machine that ran `gatehouse certs init`. */
export type CertificateAuthority = CertificateWithKey;

export interface CertificateAuthorityOptions {
  commonName: string;
  validDays: number;
}

export interface ServerCertificateOptions {
  /** Host names and IP addresses (v4 or v6); the first also becomes the subject common name. */
  names: string[];
  validDays: number;
}

export type ExtendedKeyUsageName = 'clientAuth' | 'serverAuth';

export interface ClientCertificateOptions {
  commonName: string;
  /** Ignored when `notAfter` is given. Defaults to 365. */
  validDays?: number;
  notBefore?: Date;
  notAfter?: Date;
  /** Defaults to `['clientAuth']`; an empty list leaves the extension out (tests of refusals). */
  extendedKeyUsages?: ExtendedKeyUsageName[];
}

export interface IssuedClientCertificate extends CertificateWithKey {
  /** SHA-256 of the DER encoding, lower-case hex without separators. */
  fingerprint: string;
  /** Lower-case hex of the serial number's bytes. */
  serialNumber: string;
}

export interface Pkcs12ExportOptions extends CertificateWithKey {
  caCertificatePem: string;
  password: string;
  /** The name a keychain shows for the imported identity. */
  friendlyName?: string;
}

import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, randomBytes, webcrypto } from 'node:crypto';

export type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto);

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Certificates start a little in the past so a peer whose clock lags does not reject them. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export { x509 };

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

export async function importSigningKey(privateKeyPem: string): Promise<CryptoKey> {
  const [pkcs8] = x509.PemConverter.decode(privateKeyPem);
  if (!pkcs8) {
    throw new Error('The CA private key is not PEM');
  }
  return webcrypto.subtle.importKey('pkcs8', pkcs8, KEY_ALGORITHM, false, ['sign']);
}

/** 16 random bytes, top bit cleared so the DER INTEGER stays positive (RFC 5280 4.1.2.2). */
export function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0] & 0x7f || 0x01;
  return bytes.toString('hex');
}

export function validityWindow(
  validDays: number,
  now = new Date(),
): { notBefore: Date; notAfter: Date } {
  if (!(validDays > 0)) {
    throw new Error(`validDays must be positive, got ${validDays}`);
  }
  return {
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + validDays * DAY_MS),
  };
}

export function fingerprintOf(certificate: x509.X509Certificate): string {
  return createHash('sha256').update(Buffer.from(certificate.rawData)).digest('hex');
}

export function commonNameSubject(commonName: string): x509.JsonName {
  // A JSON name, not a string, so a comma or equals sign in the name cannot add attributes.
  return [{ CN: [commonName] }];
}

export async function keyIdentifierExtensions(
  subjectKey: CryptoKey,
  issuerKey: CryptoKey,
): Promise<x509.Extension[]> {
  return [
    await x509.SubjectKeyIdentifierExtension.create(subjectKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuerKey),
  ];
}

import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto, X509Certificate } from 'node:crypto';

type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto);

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 60 * 60 * 1000;

export const EXTENDED_KEY_USAGE = {
  clientAuth: x509.ExtendedKeyUsage.clientAuth,
  serverAuth: x509.ExtendedKeyUsage.serverAuth,
  any: '2.5.29.37.0',
} as const;

/** A generated certificate with its key, in every form a spec may need. */
export interface TestCertificate {
  certificate: X509Certificate;
  der: Buffer;
  pem: string;
  keyPem: string;
  keys: CryptoKeyPair;
  subject: string;
}

export interface CertificateOptions {
  subject?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** Extended key usages; null leaves the extension out. Leaves default to clientAuth. */
  extendedKeyUsages?: string[] | null;
  /** Leave out the authority key identifier, so only names and signatures link it to its issuer. */
  omitAuthorityKeyIdentifier?: boolean;
  /** Leave out key usage, so nothing but basic constraints says the certificate is no CA. */
  omitKeyUsage?: boolean;
  /** Claimed issuer name for a certificate signed with a key that is not that issuer's. */
  issuerName?: string;
  keys?: CryptoKeyPair;
}

export async function generateKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
}

/** A self-signed root CA. */
export async function buildCertificateAuthority(
  options: CertificateOptions = {},
): Promise<TestCertificate> {
  const keys = options.keys ?? (await generateKeys());
  const subject = options.subject ?? 'CN=Gatehouse Test CA, O=Gatehouse';
  const generated = await x509.X509CertificateGenerator.createSelfSigned({
    name: subject,
    keys,
    signingAlgorithm: EC_P256,
    ...validity(options),
    extensions: [
      ...(await caExtensions(keys)),
      ...extendedKeyUsageExtension(options.extendedKeyUsages ?? null),
    ],
  });
  return toTestCertificate(generated, keys, subject);
}

/** An intermediate CA signed by `issuer`. */
export async function buildIntermediate(
  issuer: TestCertificate,
  options: CertificateOptions = {},
): Promise<TestCertificate> {
  const keys = options.keys ?? (await generateKeys());
  return issue(issuer, keys, options.subject ?? 'CN=Gatehouse Test Intermediate, O=Gatehouse', {
    ...options,
    extensions: [
      ...(await caExtensions(keys)),
      ...extendedKeyUsageExtension(options.extendedKeyUsages ?? null),
    ],
  });
}

/** An end-entity certificate signed by `issuer`, with clientAuth unless told otherwise. */
export async function buildLeaf(
  issuer: TestCertificate,
  options: CertificateOptions = {},
): Promise<TestCertificate> {
  const keys = options.keys ?? (await generateKeys());
  const usages =
    options.extendedKeyUsages === undefined
      ? [EXTENDED_KEY_USAGE.clientAuth]
      : options.extendedKeyUsages;
  return issue(issuer, keys, options.subject ?? 'CN=alice, O=Gatehouse', {
    ...options,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      ...(options.omitKeyUsage
        ? []
        : [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...extendedKeyUsageExtension(usages),
    ],
  });
}

/** A self-signed end-entity certificate, e.g. an attacker's copy of a real subject. */
export async function buildSelfSignedLeaf(
  options: CertificateOptions = {},
): Promise<TestCertificate> {
  const keys = options.keys ?? (await generateKeys());
  const subject = options.subject ?? 'CN=alice, O=Gatehouse';
  const generated = await x509.X509CertificateGenerator.createSelfSigned({
    name: subject,
    keys,
    signingAlgorithm: EC_P256,
    ...validity(options),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      ...extendedKeyUsageExtension(options.extendedKeyUsages ?? [EXTENDED_KEY_USAGE.clientAuth]),
    ],
  });
  return toTestCertificate(generated, keys, subject);
}

/** Every certificate the mTLS specs need, built once per spec file. */
export interface TestPki {
  ca: TestCertificate;
  intermediate: TestCertificate;
  clientLeaf: TestCertificate;
  intermediateLeaf: TestCertificate;
  serverOnlyLeaf: TestCertificate;
  noExtendedKeyUsageLeaf: TestCertificate;
  expiredLeaf: TestCertificate;
  notYetValidLeaf: TestCertificate;
  selfSignedCopy: TestCertificate;
  otherCa: TestCertificate;
  otherCaLeaf: TestCertificate;
  /** A different key under the real CA's name, signing a leaf without key identifiers. */
  impostorCa: TestCertificate;
  impostorLeaf: TestCertificate;
}

export async function buildTestPki(now = new Date()): Promise<TestPki> {
  const ca = await buildCertificateAuthority();
  const intermediate = await buildIntermediate(ca);
  const clientLeaf = await buildLeaf(ca, { subject: 'CN=alice, O=Gatehouse' });
  const otherCa = await buildCertificateAuthority({ subject: 'CN=Other CA, O=Elsewhere' });
  const impostorCa = await buildCertificateAuthority({ subject: ca.subject });
  return {
    ca,
    intermediate,
    clientLeaf,
    intermediateLeaf: await buildLeaf(intermediate, { subject: 'CN=bob, O=Gatehouse' }),
    serverOnlyLeaf: await buildLeaf(ca, {
      subject: 'CN=server-only, O=Gatehouse',
      extendedKeyUsages: [EXTENDED_KEY_USAGE.serverAuth],
    }),
    noExtendedKeyUsageLeaf: await buildLeaf(ca, {
      subject: 'CN=no-eku, O=Gatehouse',
      extendedKeyUsages: null,
    }),
    expiredLeaf: await buildLeaf(ca, {
      subject: 'CN=expired, O=Gatehouse',
      notBefore: new Date(now.getTime() - 30 * DAY_MS),
      notAfter: new Date(now.getTime() - DAY_MS),
    }),
    notYetValidLeaf: await buildLeaf(ca, {
      subject: 'CN=future, O=Gatehouse',
      notBefore: new Date(now.getTime() + DAY_MS),
      notAfter: new Date(now.getTime() + 30 * DAY_MS),
    }),
    selfSignedCopy: await buildSelfSignedLeaf({ subject: clientLeaf.subject }),
    otherCa,
    otherCaLeaf: await buildLeaf(otherCa, { subject: 'CN=alice, O=Gatehouse' }),
    impostorCa,
    impostorLeaf: await buildLeaf(impostorCa, {
      subject: clientLeaf.subject,
      omitAuthorityKeyIdentifier: true,
    }),
  };
}

/** PEM text of several certificates, as a CA bundle file holds them. */
export function bundleOf(...certificates: TestCertificate[]): string {
  return certificates.map((entry) => entry.pem).join('');
}

/** The URL-encoded PEM nginx's `$ssl_client_escaped_cert` and Envoy's XFCC `Cert` carry. */
export function urlEncodedPem(certificate: TestCertificate): string {
  return encodeURIComponent(certificate.pem);
}

/** nginx's legacy `$ssl_client_cert`: every line after the first starts with a tab. */
export function tabContinuedPem(certificate: TestCertificate): string {
  return certificate.pem.trimEnd().split('\n').join('\n\t');
}

async function issue(
  issuer: TestCertificate,
  keys: CryptoKeyPair,
  subject: string,
  options: CertificateOptions & { extensions: x509.Extension[] },
): Promise<TestCertificate> {
  const identifiers = options.omitAuthorityKeyIdentifier
    ? []
    : [await x509.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey)];
  const generated = await x509.X509CertificateGenerator.create({
    subject,
    issuer: options.issuerName ?? issuer.subject,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: EC_P256,
    ...validity(options),
    extensions: [...options.extensions, ...identifiers],
  });
  return toTestCertificate(generated, keys, subject);
}

async function caExtensions(keys: CryptoKeyPair): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
}

function extendedKeyUsageExtension(usages: string[] | null): x509.Extension[] {
  return usages === null ? [] : [new x509.ExtendedKeyUsageExtension(usages)];
}

function validity(options: CertificateOptions): {
  notBefore: Date;
  notAfter: Date;
  serialNumber: string;
} {
  const now = Date.now();
  return {
    serialNumber: randomSerialNumber(),
    notBefore: options.notBefore ?? new Date(now - 60 * 60 * 1000),
    notAfter: options.notAfter ?? new Date(now + 365 * DAY_MS),
  };
}

function randomSerialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(12));
  bytes[0] = (bytes[0] & 0x7f) | 0x01;
  return Buffer.from(bytes).toString('hex');
}

async function toTestCertificate(
  generated: x509.X509Certificate,
  keys: CryptoKeyPair,
  subject: string,
): Promise<TestCertificate> {
  const der = Buffer.from(generated.rawData);
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    certificate: new X509Certificate(der),
    der,
    pem: generated.toString('pem') + '\n',
    keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') + '\n',
    keys,
    subject,
  };
}

import { createPrivateKey, X509Certificate as NodeX509Certificate } from 'node:crypto';
import { CertificateAuthority, CertificateAuthorityOptions } from './pki.types';
import {
  commonNameSubject,
  CryptoKey,
  exportPrivateKeyPem,
  generateKeyPair,
  importSigningKey,
  randomSerialNumber,
  SIGNING_ALGORITHM,
  validityWindow,
  x509,
} from './x509-support';

/** A CA parsed and ready to sign: its certificate and a non-extractable signing key. */
export interface LoadedCertificateAuthority {
  certificate: x509.X509Certificate;
  signingKey: CryptoKey;
}

/** Creates a self-signed EC P-256 CA that may sign end-entity certificates only. */
export async function createCertificateAuthority(
  options: CertificateAuthorityOptions,
): Promise<CertificateAuthority> {
  const keys = await generateKeyPair();

  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumber(),
    name: commonNameSubject(options.commonName),
    ...validityWindow(options.validDays),
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      // pathLength 0: a leaked leaf key cannot be turned into an intermediate CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });

  return {
    certificatePem: certificate.toString('pem'),
    privateKeyPem: await exportPrivateKeyPem(keys.privateKey),
  };
}

/** Parses a CA and checks that its key belongs to its certificate and that it may sign. */
export async function loadCertificateAuthority(
  ca: CertificateAuthority,
): Promise<LoadedCertificateAuthority> {
  const certificate = new x509.X509Certificate(ca.certificatePem);
  const basicConstraints = certificate.getExtension(x509.BasicConstraintsExtension);
  if (!basicConstraints?.ca) {
    throw new Error('The CA certificate is not marked as a certificate authority');
  }

  const privateKey = createPrivateKey(ca.privateKeyPem);
  const keyMatches = new NodeX509Certificate(ca.certificatePem).checkPrivateKey(privateKey);
  if (!keyMatches) {
    throw new Error('The CA private key does not belong to the CA certificate');
  }

  return { certificate, signingKey: await importSigningKey(ca.privateKeyPem) };
}

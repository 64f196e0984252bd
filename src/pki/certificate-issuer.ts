import { LoadedCertificateAuthority } from './certificate-authority';
import {
  commonNameSubject,
  exportPrivateKeyPem,
  generateKeyPair,
  randomSerialNumber,
  SIGNING_ALGORITHM,
  x509,
} from './x509-support';

export interface LeafCertificateRequest {
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  /** Usage-specific extensions; basic constraints and key identifiers are added here. */
  extensions: x509.Extension[];
}

export interface IssuedLeaf {
  certificate: x509.X509Certificate;
  privateKeyPem: string;
}

/** Signs a fresh EC P-256 key into an end-entity certificate under the given CA. */
export async function issueLeafCertificate(
  ca: LoadedCertificateAuthority,
  request: LeafCertificateRequest,
): Promise<IssuedLeaf> {
  if (request.notAfter.getTime() <= request.notBefore.getTime()) {
    throw new Error('notAfter must be later than notBefore');
  }

  const keys = await generateKeyPair();

  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: commonNameSubject(request.commonName),
    issuer: ca.certificate.subjectName,
    notBefore: request.notBefore,
    notAfter: request.notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      ...request.extensions,
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey),
    ],
  });

  return { certificate, privateKeyPem: await exportPrivateKeyPem(keys.privateKey) };
}

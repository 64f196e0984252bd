import { loadCertificateAuthority } from './certificate-authority';
import { issueLeafCertificate } from './certificate-issuer';
import {
  CertificateAuthority,
  ClientCertificateOptions,
  ExtendedKeyUsageName,
  IssuedClientCertificate,
} from './pki.types';
import { fingerprintOf, validityWindow, x509 } from './x509-support';

const DEFAULT_VALID_DAYS = 365;

/**
 * Issues a client certificate for `commonName`. Tests may pass past or future dates and other
 * extended key usages to produce certificates that Gatehouse must refuse.
 */
export async function issueClientCertificate(
  ca: CertificateAuthority,
  options: ClientCertificateOptions,
): Promise<IssuedClientCertificate> {
  const issued = await issueLeafCertificate(await loadCertificateAuthority(ca), {
    commonName: options.commonName,
    ...clientValidity(options),
    extensions: clientExtensions(options.extendedKeyUsages ?? ['clientAuth']),
  });

  return {
    certificatePem: issued.certificate.toString('pem'),
    privateKeyPem: issued.privateKeyPem,
    fingerprint: fingerprintOf(issued.certificate),
    serialNumber: issued.certificate.serialNumber.toLowerCase(),
  };
}

function clientValidity(options: ClientCertificateOptions): { notBefore: Date; notAfter: Date } {
  const defaults = validityWindow(options.validDays ?? DEFAULT_VALID_DAYS);
  return {
    notBefore: options.notBefore ?? defaults.notBefore,
    notAfter: options.notAfter ?? defaults.notAfter,
  };
}

function clientExtensions(usages: ExtendedKeyUsageName[]): x509.Extension[] {
  const extensions: x509.Extension[] = [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
  ];
  if (usages.length > 0) {
    extensions.push(
      new x509.ExtendedKeyUsageExtension(usages.map((usage) => x509.ExtendedKeyUsage[usage])),
    );
  }
  return extensions;
}

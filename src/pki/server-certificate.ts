import { isIP } from 'node:net';
import { loadCertificateAuthority } from './certificate-authority';
import { issueLeafCertificate } from './certificate-issuer';
import { CertificateAuthority, CertificateWithKey, ServerCertificateOptions } from './pki.types';
import { validityWindow, x509 } from './x509-support';

/** Issues a TLS server certificate whose SANs hold each name as a DNS or IP entry. */
export async function issueServerCertificate(
  ca: CertificateAuthority,
  options: ServerCertificateOptions,
): Promise<CertificateWithKey> {
  if (options.names.length === 0) {
    throw new Error('A server certificate needs at least one name');
  }

  const issued = await issueLeafCertificate(await loadCertificateAuthority(ca), {
    commonName: options.names[0],
    ...validityWindow(options.validDays),
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(options.names.map(toGeneralName)),
    ],
  });

  return {
    certificatePem: issued.certificate.toString('pem'),
    privateKeyPem: issued.privateKeyPem,
  };
}

function toGeneralName(name: string): x509.JsonGeneralName {
  return { type: isIP(name) ? 'ip' : 'dns', value: name };
}

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createCertificateAuthority } from './certificate-authority';
import { issueServerCertificate } from './server-certificate';
import { x509 } from './x509-support';

describe('issueServerCertificate', () => {
  const names = ['localhost', '127.0.0.1', '::1'];

  it('chains to the CA and names every host and address in its SANs', async () => {
    const ca = await createCertificateAuthority({ commonName: 'Test CA', validDays: 30 });
    const server = await issueServerCertificate(ca, { names, validDays: 10 });
    const caCertificate = new X509Certificate(ca.certificatePem);
    const certificate = new X509Certificate(server.certificatePem);

    expect(certificate.checkIssued(caCertificate)).toBe(true);
    expect(certificate.verify(caCertificate.publicKey)).toBe(true);
    expect(certificate.ca).toBe(false);
    expect(certificate.subject).toBe('CN=localhost');
    expect(certificate.subjectAltName).toBe(
      'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    expect(certificate.checkHost('localhost')).toBe('localhost');
    expect(certificate.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(certificate.checkIP('::1')).toBe('::1');
    expect(certificate.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(certificate.checkPrivateKey(createPrivateKey(server.privateKeyPem))).toBe(true);
  });

  it('carries the CA key identifier so verifiers find the issuer', async () => {
    const ca = await createCertificateAuthority({ commonName: 'Test CA', validDays: 30 });
    const server = await issueServerCertificate(ca, { names, validDays: 10 });
    const caCertificate = new x509.X509Certificate(ca.certificatePem);
    const certificate = new x509.X509Certificate(server.certificatePem);

    const subjectKeyId = caCertificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    const authorityKeyId = certificate.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
    expect(authorityKeyId).toBeDefined();
    expect(authorityKeyId).toBe(subjectKeyId);
  });

  it('refuses an empty list of names', async () => {
    const ca = await createCertificateAuthority({ commonName: 'Test CA', validDays: 30 });

    await expect(issueServerCertificate(ca, { names: [], validDays: 1 })).rejects.toThrow('name');
  });
});

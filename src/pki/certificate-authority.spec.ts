import { X509Certificate } from 'node:crypto';
import { createCertificateAuthority, loadCertificateAuthority } from './certificate-authority';
import { x509 } from './x509-support';

describe('createCertificateAuthority', () => {
  it('creates a self-signed CA that may sign certificates and CRLs only', async () => {
    const ca = await createCertificateAuthority({ commonName: 'Test CA', validDays: 30 });
    const certificate = new X509Certificate(ca.certificatePem);

    expect(certificate.ca).toBe(true);
    expect(certificate.subject).toBe('CN=Test CA');
    expect(certificate.checkIssued(certificate)).toBe(true);
    expect(certificate.verify(certificate.publicKey)).toBe(true);
    expect(certificate.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(ca.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('sets critical basic constraints and key usage, and a subject key id', async () => {
    const ca = await createCertificateAuthority({ commonName: 'Test CA', validDays: 30 });
    const { certificate } = await loadCertificateAuthority(ca);

    const basicConstraints = certificate.getExtension(x509.BasicConstraintsExtension);
    const keyUsage = certificate.getExtension(x509.KeyUsagesExtension);
    expect(basicConstraints?.critical).toBe(true);
    expect(basicConstraints?.pathLength).toBe(0);
    expect(keyUsage?.critical).toBe(true);
    expect(keyUsage?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(certificate.getExtension(x509.SubjectKeyIdentifierExtension)).not.toBeNull();
  });

  it('is valid from shortly before now for the requested number of days', async () => {
    const before = Date.now();
    const ca = await createCertificateAuthority({ commonName: 'Test CA', validDays: 30 });
    const certificate = new X509Certificate(ca.certificatePem);

    const validFrom = new Date(certificate.validFrom).getTime();
    const validTo = new Date(certificate.validTo).getTime();
    expect(validFrom).toBeLessThanOrEqual(before);
    expect(before - validFrom).toBeLessThan(10 * 60 * 1000);
    expect(Math.abs(validTo - (before + 30 * 86_400_000))).toBeLessThan(60 * 1000);
  });

  it('refuses a CA whose key belongs to another certificate', async () => {
    const first = await createCertificateAuthority({ commonName: 'First', validDays: 1 });
    const second = await createCertificateAuthority({ commonName: 'Second', validDays: 1 });

    await expect(
      loadCertificateAuthority({
        certificatePem: first.certificatePem,
        privateKeyPem: second.privateKeyPem,
      }),
    ).rejects.toThrow('does not belong');
  });

  it('refuses a non-positive validity', async () => {
    await expect(createCertificateAuthority({ commonName: 'CA', validDays: 0 })).rejects.toThrow(
      'validDays',
    );
  });
});

import { createHash, X509Certificate } from 'node:crypto';
import { createCertificateAuthority } from './certificate-authority';
import { issueClientCertificate } from './client-certificate';
import { CertificateAuthority } from './pki.types';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

describe('issueClientCertificate', () => {
  let ca: CertificateAuthority;
  let caCertificate: X509Certificate;

  beforeAll(async () => {
    ca = await createCertificateAuthority({ commonName: 'Test CA', validDays: 30 });
    caCertificate = new X509Certificate(ca.certificatePem);
  });

  it('issues a clientAuth certificate for the common name that chains to the CA', async () => {
    const client = await issueClientCertificate(ca, { commonName: 'alice' });
    const certificate = new X509Certificate(client.certificatePem);

    expect(certificate.subject).toBe('CN=alice');
    expect(certificate.checkIssued(caCertificate)).toBe(true);
    expect(certificate.verify(caCertificate.publicKey)).toBe(true);
    expect(certificate.keyUsage).toEqual([CLIENT_AUTH]);
    expect(certificate.ca).toBe(false);
  });

  it('reports the SHA-256 fingerprint of the DER encoding in lower-case hex', async () => {
    const client = await issueClientCertificate(ca, { commonName: 'alice' });
    const certificate = new X509Certificate(client.certificatePem);

    expect(client.fingerprint).toBe(createHash('sha256').update(certificate.raw).digest('hex'));
    expect(client.fingerprint).toBe(certificate.fingerprint256.replace(/:/g, '').toLowerCase());
    expect(client.serialNumber).toBe(certificate.serialNumber.toLowerCase());
  });

  it('draws a positive 16-byte serial number at random for each certificate', async () => {
    const serials = await Promise.all(
      [1, 2, 3, 4].map(
        async () => (await issueClientCertificate(ca, { commonName: 'a' })).serialNumber,
      ),
    );

    expect(new Set(serials).size).toBe(4);
    for (const serial of serials) {
      expect(serial).toMatch(/^[0-7][0-9a-f]{31}$/);
      expect(serial.startsWith('00')).toBe(false);
    }
  });

  it('keeps a common name with DN syntax as one attribute', async () => {
    const client = await issueClientCertificate(ca, { commonName: 'bob,O=Admins' });
    const certificate = new X509Certificate(client.certificatePem);

    expect(certificate.subject).toBe('CN=bob\\,O=Admins');
  });

  it('uses the given validity window, including one already over', async () => {
    const notBefore = new Date('2020-01-01T00:00:00Z');
    const notAfter = new Date('2020-02-01T00:00:00Z');
    const client = await issueClientCertificate(ca, { commonName: 'old', notBefore, notAfter });
    const certificate = new X509Certificate(client.certificatePem);

    expect(new Date(certificate.validFrom)).toEqual(notBefore);
    expect(new Date(certificate.validTo)).toEqual(notAfter);
  });

  it('lasts validDays from now when no end date is given', async () => {
    const client = await issueClientCertificate(ca, { commonName: 'alice', validDays: 7 });
    const certificate = new X509Certificate(client.certificatePem);

    const expected = Date.now() + 7 * 86_400_000;
    expect(Math.abs(new Date(certificate.validTo).getTime() - expected)).toBeLessThan(60_000);
  });

  it('can carry serverAuth only, or no extended key usage at all, for refusal tests', async () => {
    const serverOnly = await issueClientCertificate(ca, {
      commonName: 'wrong-usage',
      extendedKeyUsages: ['serverAuth'],
    });
    const unrestricted = await issueClientCertificate(ca, {
      commonName: 'no-usage',
      extendedKeyUsages: [],
    });

    expect(new X509Certificate(serverOnly.certificatePem).keyUsage).toEqual([SERVER_AUTH]);
    expect(new X509Certificate(unrestricted.certificatePem).keyUsage).toBeUndefined();
  });

  it('refuses an end date before the start date', async () => {
    const notBefore = new Date('2030-01-01T00:00:00Z');
    const notAfter = new Date('2029-01-01T00:00:00Z');

    await expect(
      issueClientCertificate(ca, { commonName: 'x', notBefore, notAfter }),
    ).rejects.toThrow('notAfter');
  });
});

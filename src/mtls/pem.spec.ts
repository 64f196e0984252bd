import { decodeCertificatePems, decodeSingleCertificatePem, isParseableCertificate } from './pem';
import { buildTestPki, bundleOf, TestPki } from './testing/certificate-builders';

describe('decodeCertificatePems', () => {
  let pki: TestPki;

  beforeAll(async () => {
    pki = await buildTestPki();
  });

  it('decodes every certificate of a bundle, in order', () => {
    expect(decodeCertificatePems(bundleOf(pki.ca, pki.intermediate), 5)).toEqual({
      ok: true,
      ders: [pki.ca.der, pki.intermediate.der],
    });
  });

  it('refuses more blocks than allowed', () => {
    expect(decodeCertificatePems(bundleOf(pki.ca, pki.intermediate), 1)).toEqual({
      ok: false,
      detail: 'more than 1 certificate(s) in PEM',
    });
  });

  it('refuses a block of another type', () => {
    expect(decodeCertificatePems(bundleOf(pki.ca) + pki.ca.keyPem, 5).ok).toBe(false);
  });

  it('refuses a block whose labels disagree', () => {
    const mislabelled = pki.ca.pem.replace('END CERTIFICATE', 'END X509 CRL');

    expect(decodeCertificatePems(mislabelled, 5).ok).toBe(false);
  });

  it('refuses a block whose body is not base64', () => {
    const pem = '-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n';

    expect(decodeCertificatePems(pem, 5).ok).toBe(false);
  });

  it('refuses a truncated block', () => {
    const truncated = pki.ca.pem.slice(0, pki.ca.pem.length - 40);

    expect(decodeCertificatePems(truncated, 5).ok).toBe(false);
  });
});

describe('decodeSingleCertificatePem', () => {
  let pki: TestPki;

  beforeAll(async () => {
    pki = await buildTestPki();
  });

  it('decodes one certificate', () => {
    expect(decodeSingleCertificatePem(pki.clientLeaf.pem)).toEqual({
      ok: true,
      der: pki.clientLeaf.der,
    });
  });

  it('accepts CRLF line endings and tab continuations', () => {
    const pem = pki.clientLeaf.pem.trimEnd().split('\n').join('\r\n\t');

    expect(decodeSingleCertificatePem(pem)).toEqual({ ok: true, der: pki.clientLeaf.der });
  });

  it('refuses two certificates', () => {
    expect(decodeSingleCertificatePem(bundleOf(pki.clientLeaf, pki.ca)).ok).toBe(false);
  });

  it('refuses text larger than 16 KiB', () => {
    expect(decodeSingleCertificatePem(pki.clientLeaf.pem + ' '.repeat(16 * 1024))).toEqual({
      ok: false,
      detail: 'certificate PEM larger than 16384 bytes',
    });
  });
});

describe('isParseableCertificate', () => {
  it('refuses bytes that are not DER', () => {
    expect(isParseableCertificate(Buffer.from('hello'))).toBe(false);
  });
});

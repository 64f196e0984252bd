import { ForwardedHeaders } from './forwarded-certificate';
import { decodeNginxCertificate, readNginxCertificate } from './nginx-headers';
import {
  buildTestPki,
  bundleOf,
  tabContinuedPem,
  TestPki,
  urlEncodedPem,
} from './testing/certificate-builders';

describe('readNginxCertificate', () => {
  let pki: TestPki;

  beforeAll(async () => {
    pki = await buildTestPki();
  });

  function headers(
    verify: string | string[] | undefined,
    certificate?: string | string[],
  ): ForwardedHeaders {
    return { 'x-ssl-client-verify': verify, 'x-ssl-client-cert': certificate };
  }

  it('reads the URL-encoded PEM of $ssl_client_escaped_cert', () => {
    const result = readNginxCertificate(headers('SUCCESS', urlEncodedPem(pki.clientLeaf)));

    expect(result).toEqual({ kind: 'certificate', der: pki.clientLeaf.der, chain: [] });
  });

  it('reads the tab-continued PEM of the legacy $ssl_client_cert', () => {
    const result = readNginxCertificate(headers('SUCCESS', tabContinuedPem(pki.clientLeaf)));

    expect(result).toEqual({ kind: 'certificate', der: pki.clientLeaf.der, chain: [] });
  });

  it('reads legacy PEM whose line breaks became spaces', () => {
    const folded = pki.clientLeaf.pem.trimEnd().split('\n').join(' ');

    expect(readNginxCertificate(headers('SUCCESS', folded))).toMatchObject({ kind: 'certificate' });
  });

  it('reads a single header line given as an array', () => {
    const result = readNginxCertificate(headers(['SUCCESS'], [urlEncodedPem(pki.clientLeaf)]));

    expect(result).toMatchObject({ kind: 'certificate' });
  });

  it('reports none when neither header is present', () => {
    expect(readNginxCertificate({})).toEqual({ kind: 'none' });
  });

  it('reports none for NONE without a certificate', () => {
    expect(readNginxCertificate(headers('NONE'))).toEqual({ kind: 'none' });
    expect(readNginxCertificate(headers('NONE', ''))).toEqual({ kind: 'none' });
  });

  it('refuses a certificate sent with NONE', () => {
    const result = readNginxCertificate(headers('NONE', urlEncodedPem(pki.clientLeaf)));

    expect(result.kind).toBe('malformed');
  });

  it('refuses a certificate sent without any verification header', () => {
    const result = readNginxCertificate(headers(undefined, urlEncodedPem(pki.clientLeaf)));

    expect(result.kind).toBe('malformed');
  });

  it('reports a failed verification with its reason', () => {
    const result = readNginxCertificate(
      headers('FAILED:certificate has expired', urlEncodedPem(pki.expiredLeaf)),
    );

    expect(result).toEqual({ kind: 'failed', detail: 'FAILED:certificate has expired' });
  });

  it.each([
    'SUCCESSFUL',
    'success ',
    'success',
    ' SUCCESS',
    'SUCCESS\t',
    'SUCCESS, SUCCESS',
    'OK',
    'FAILED',
  ])('does not take %j for success', (verify) => {
    const result = readNginxCertificate(headers(verify, urlEncodedPem(pki.clientLeaf)));

    expect(result.kind).not.toBe('certificate');
    expect(result.kind).toBe('malformed');
  });

  it('refuses a doubled verification header', () => {
    const result = readNginxCertificate(
      headers(['SUCCESS', 'SUCCESS'], urlEncodedPem(pki.clientLeaf)),
    );

    expect(result).toEqual({ kind: 'malformed', detail: 'x-ssl-client-verify appears 2 times' });
  });

  it('refuses a doubled certificate header', () => {
    const certificate = urlEncodedPem(pki.clientLeaf);

    const result = readNginxCertificate(headers('SUCCESS', [certificate, certificate]));

    expect(result).toEqual({ kind: 'malformed', detail: 'x-ssl-client-cert appears 2 times' });
  });

  it('refuses two certificates joined into one header value', () => {
    const joined = `${urlEncodedPem(pki.clientLeaf)}, ${urlEncodedPem(pki.otherCaLeaf)}`;

    expect(readNginxCertificate(headers('SUCCESS', joined)).kind).toBe('malformed');
  });

  it('refuses SUCCESS without a certificate', () => {
    expect(readNginxCertificate(headers('SUCCESS')).kind).toBe('malformed');
  });
});

describe('decodeNginxCertificate', () => {
  let pki: TestPki;

  beforeAll(async () => {
    pki = await buildTestPki();
  });

  function detailOf(headerValue: string): string {
    const result = decodeNginxCertificate(headerValue);
    return result.kind === 'malformed' ? result.detail : `not malformed: ${result.kind}`;
  }

  it('refuses several PEM blocks', () => {
    expect(detailOf(encodeURIComponent(bundleOf(pki.clientLeaf, pki.ca)))).toMatch(/more than 1/);
  });

  it('refuses a value larger than 16 KiB', () => {
    const padded = urlEncodedPem(pki.clientLeaf) + '%0A'.repeat(6000);

    expect(detailOf(padded)).toMatch(/larger than 16384 bytes/);
  });

  it('refuses a PEM block that is not a certificate', () => {
    expect(detailOf(encodeURIComponent(pki.clientLeaf.keyPem))).toMatch(
      /PRIVATE KEY, not CERTIFICATE/,
    );
  });

  it('refuses broken URL encoding', () => {
    expect(detailOf(`${urlEncodedPem(pki.clientLeaf)}%E0%A4%A`)).toMatch(/not valid URL encoding/);
  });

  it('refuses a certificate block whose body is not base64', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nnot*base64!\n-----END CERTIFICATE-----\n';

    expect(detailOf(encodeURIComponent(pem))).toMatch(/not valid base64 DER/);
  });

  it('refuses base64 that is not a certificate', () => {
    const body = Buffer.from('hello world!').toString('base64');
    const pem = `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----`;

    expect(detailOf(encodeURIComponent(pem))).toMatch(/not valid base64 DER/);
  });

  it('refuses text around the PEM block', () => {
    expect(detailOf(encodeURIComponent(`admin ${pki.clientLeaf.pem}`))).toMatch(/unexpected text/);
  });

  it('refuses text with no PEM block', () => {
    expect(detailOf('garbage')).toMatch(/no PEM certificate/);
  });
});

import { X509Certificate } from 'node:crypto';

/** Larger than any sane client certificate; bounds the work an attacker-supplied header costs. */
export const MAX_CERTIFICATE_PEM_BYTES = 16 * 1024;

export type PemDecodeResult = { ok: true; ders: Buffer[] } | { ok: false; detail: string };

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const BASE64_BODY = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Decodes PEM text that must hold only CERTIFICATE blocks, each a parseable X.509 certificate.
 * White space inside a block is ignored, which also accepts nginx's legacy tab-continued lines
 * and header folding that became spaces.
 */
export function decodeCertificatePems(text: string, maxBlocks: number): PemDecodeResult {
  const ders: Buffer[] = [];
  for (const [, beginLabel, body, endLabel] of text.matchAll(PEM_BLOCK)) {
    if (beginLabel !== 'CERTIFICATE' || endLabel !== 'CERTIFICATE') {
      return { ok: false, detail: `PEM block is ${beginLabel}, not CERTIFICATE` };
    }
    if (ders.length === maxBlocks) {
      return { ok: false, detail: `more than ${maxBlocks} certificate(s) in PEM` };
    }
    const der = decodeBody(body);
    if (!der) {
      return { ok: false, detail: 'certificate PEM is not valid base64 DER' };
    }
    ders.push(der);
  }

  if (ders.length === 0) {
    return { ok: false, detail: 'no PEM certificate found' };
  }
  // Text outside the blocks would be ignored by a lenient reader; refuse it so two readers
  // of one header can never disagree about what it says.
  if (text.replace(PEM_BLOCK, '').trim() !== '') {
    return { ok: false, detail: 'unexpected text around the PEM certificate' };
  }
  return { ok: true, ders };
}

/** Decodes PEM text holding exactly one certificate, as a forwarded client certificate must. */
export function decodeSingleCertificatePem(
  text: string,
): { ok: true; der: Buffer } | { ok: false; detail: string } {
  if (Buffer.byteLength(text) > MAX_CERTIFICATE_PEM_BYTES) {
    return { ok: false, detail: `certificate PEM larger than ${MAX_CERTIFICATE_PEM_BYTES} bytes` };
  }
  const decoded = decodeCertificatePems(text, 1);
  return decoded.ok ? { ok: true, der: decoded.ders[0] } : decoded;
}

/** Whether the DER bytes parse as an X.509 certificate. */
export function isParseableCertificate(der: Buffer): boolean {
  try {
    new X509Certificate(der);
    return true;
  } catch {
    return false;
  }
}

function decodeBody(body: string): Buffer | null {
  const compact = body.replace(/[ \t\r\n]/g, '');
  if (!BASE64_BODY.test(compact) || compact.length % 4 !== 0) {
    return null;
  }
  const der = Buffer.from(compact, 'base64');
  return isParseableCertificate(der) ? der : null;
}

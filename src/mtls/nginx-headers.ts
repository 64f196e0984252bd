import {
  ForwardedCertificate,
  ForwardedHeaders,
  malformed,
  singleHeader,
} from './forwarded-certificate';
import { decodeSingleCertificatePem, MAX_CERTIFICATE_PEM_BYTES } from './pem';

export const NGINX_VERIFY_HEADER = 'x-ssl-client-verify';
export const NGINX_CERTIFICATE_HEADER = 'x-ssl-client-cert';
/**
 * Headers that carry identity in this format; stripped from requests not sent by a trusted proxy.
 */
export const NGINX_IDENTITY_HEADERS = [NGINX_VERIFY_HEADER, NGINX_CERTIFICATE_HEADER] as const;

const FAILED_PREFIX = 'FAILED:';
const MAX_DETAIL_LENGTH = 200;

/**
 * Reads nginx's `$ssl_client_verify` and `$ssl_client_escaped_cert` (or legacy `$ssl_client_cert`)
 * as forwarded by a trusted proxy. Only the exact value `SUCCESS` counts: a value that merely
 * starts with it, differs in case or carries spaces is someone else's writing.
 */
export function readNginxCertificate(headers: ForwardedHeaders): ForwardedCertificate {
  const verify = singleHeader(headers, NGINX_VERIFY_HEADER);
  const certificate = singleHeader(headers, NGINX_CERTIFICATE_HEADER);
  if (!verify.ok) {
    return malformed(verify.detail);
  }
  if (!certificate.ok) {
    return malformed(certificate.detail);
  }

  // nginx sends no header at all for an empty variable, so empty and absent mean the same.
  const verifyValue = verify.value || undefined;
  const certificateText = certificate.value || undefined;
  if (verifyValue === undefined || verifyValue === 'NONE') {
    return certificateText === undefined
      ? { kind: 'none' }
      : malformed(`${NGINX_CERTIFICATE_HEADER} sent without a successful verification`);
  }
  if (verifyValue.startsWith(FAILED_PREFIX)) {
    return { kind: 'failed', detail: verifyValue.slice(0, MAX_DETAIL_LENGTH) };
  }
  if (verifyValue !== 'SUCCESS') {
    return malformed(`${NGINX_VERIFY_HEADER} has an unrecognised value`);
  }
  if (certificateText === undefined) {
    return malformed(`${NGINX_VERIFY_HEADER} is SUCCESS but no certificate was forwarded`);
  }
  return decodeNginxCertificate(certificateText);
}

/** Decodes the URL-encoded PEM of `$ssl_client_escaped_cert` or the tab-continued legacy PEM. */
export function decodeNginxCertificate(headerValue: string): ForwardedCertificate {
  if (headerValue.length > MAX_CERTIFICATE_PEM_BYTES) {
    return malformed(`${NGINX_CERTIFICATE_HEADER} larger than ${MAX_CERTIFICATE_PEM_BYTES} bytes`);
  }
  let pem: string;
  try {
    // Legacy PEM holds no '%', so decoding leaves it unchanged.
    pem = decodeURIComponent(headerValue);
  } catch {
    return malformed(`${NGINX_CERTIFICATE_HEADER} is not valid URL encoding`);
  }
  const decoded = decodeSingleCertificatePem(pem);
  return decoded.ok
    ? { kind: 'certificate', der: decoded.der, chain: [] }
    : malformed(`${NGINX_CERTIFICATE_HEADER}: ${decoded.detail}`);
}

import { createHash } from 'node:crypto';

const HEX_FINGERPRINT = /^[0-9a-f]{64}$/;
const COLON_HEX_FINGERPRINT = /^[0-9a-f]{2}(?::[0-9a-f]{2}){31}$/;
const BASE64URL_FINGERPRINT = /^[A-Za-z0-9_-]{43}=?$/;

/** SHA-256 of a certificate's DER encoding, lower-case hex. */
export function fingerprintOf(der: Buffer | Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/** The same digest as base64url, the RFC 8705 `x5t#S256` form. */
export function thumbprintOf(der: Buffer | Uint8Array): string {
  return createHash('sha256').update(der).digest('base64url');
}

/**
 * Accepts a SHA-256 fingerprint as colon hex, plain hex (any case) or base64url and returns lower
 * hex. Anything else throws, so a truncated or mistyped fingerprint never silently matches nothing.
 */
export function normalizeFingerprint(input: string): string {
  const text = input.trim();
  const lower = text.toLowerCase();
  if (HEX_FINGERPRINT.test(lower)) {
    return lower;
  }
  if (COLON_HEX_FINGERPRINT.test(lower)) {
    return lower.replaceAll(':', '');
  }
  if (BASE64URL_FINGERPRINT.test(text)) {
    const unpadded = text.replace(/=$/, '');
    const digest = Buffer.from(unpadded, 'base64url');
    // Refuse encodings whose spare bits are set: they decode, but are not the canonical form.
    if (digest.length === 32 && digest.toString('base64url') === unpadded) {
      return digest.toString('hex');
    }
  }
  throw new Error(
    `'${printable(text)}' is not a SHA-256 fingerprint ` +
      '(expected 64 hex digits, colon hex or 43 base64url characters)',
  );
}

function printable(text: string): string {
  const shortened = text.length > 100 ? `${text.slice(0, 100)}…` : text;
  return shortened.replace(/[^\x20-\x7e…]/g, '?');
}

import { createHash } from 'node:crypto';
import { fingerprintOf, normalizeFingerprint, thumbprintOf } from './fingerprint';

describe('fingerprintOf', () => {
  it('is the lower-case hex SHA-256 of the DER', () => {
    const der = Buffer.from('some bytes');

    expect(fingerprintOf(der)).toBe(createHash('sha256').update(der).digest('hex'));
  });
});

describe('normalizeFingerprint', () => {
  const digest = createHash('sha256').update('certificate').digest();
  const hex = digest.toString('hex');

  it('accepts lower-case hex', () => {
    expect(normalizeFingerprint(hex)).toBe(hex);
  });

  it('accepts upper-case hex', () => {
    expect(normalizeFingerprint(hex.toUpperCase())).toBe(hex);
  });

  it('accepts colon hex in any case', () => {
    const colonHex = hex.toUpperCase().match(/../g)!.join(':');

    expect(normalizeFingerprint(colonHex)).toBe(hex);
  });

  it('accepts base64url with or without padding', () => {
    expect(normalizeFingerprint(digest.toString('base64url'))).toBe(hex);
    expect(normalizeFingerprint(`${digest.toString('base64url')}=`)).toBe(hex);
  });

  it('ignores surrounding white space', () => {
    expect(normalizeFingerprint(`  ${hex}\n`)).toBe(hex);
  });

  it.each([
    ['too short', hex.slice(0, 62)],
    ['too long', `${hex}00`],
    ['not hex', `${hex.slice(0, 63)}g`],
    ['colons misplaced', `${hex.slice(0, 3)}:${hex.slice(3)}`],
    ['a SHA-1 digest', createHash('sha1').update('x').digest('hex')],
    [
      'standard base64',
      digest
        .toString('base64')
        .replace(/[A-Za-z0-9]/g, '+')
        .slice(0, 43),
    ],
    ['empty', ''],
  ])('refuses a value that is %s', (_case, input) => {
    expect(() => normalizeFingerprint(input)).toThrow(/is not a SHA-256 fingerprint/);
  });

  it('refuses base64url whose spare bits are set', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const text = digest.toString('base64url');
    const tampered = text.slice(0, 42) + alphabet[alphabet.indexOf(text[42]) | 1];

    expect(Buffer.from(tampered, 'base64url').equals(digest)).toBe(true);
    expect(() => normalizeFingerprint(tampered)).toThrow(/SHA-256 fingerprint/);
  });
});

describe('thumbprintOf', () => {
  it('is the base64url SHA-256 of the DER, without padding', () => {
    const der = Buffer.from('some bytes');

    expect(thumbprintOf(der)).toBe(createHash('sha256').update(der).digest('base64url'));
    expect(thumbprintOf(der)).not.toMatch(/[=+/]/);
  });
});

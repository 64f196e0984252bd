import { createHash } from 'node:crypto';
import { parseTrustedProxyCertificates } from './trusted-proxy-certs';

describe('parseTrustedProxyCertificates', () => {
  const first = createHash('sha256').update('proxy one').digest();
  const second = createHash('sha256').update('proxy two').digest();
  const third = createHash('sha256').update('proxy three').digest();

  it('reads fingerprints in every accepted form as lower hex', () => {
    const colonHex = second.toString('hex').toUpperCase().match(/../g)!.join(':');
    const upperHex = first.toString('hex').toUpperCase();
    const list = `${upperHex}, ${colonHex},${third.toString('base64url')}`;

    expect(parseTrustedProxyCertificates(list)).toEqual(
      new Set([first.toString('hex'), second.toString('hex'), third.toString('hex')]),
    );
  });

  it('collapses the same fingerprint written twice', () => {
    const list = `${first.toString('hex')},${first.toString('base64url')}`;

    expect(parseTrustedProxyCertificates(list).size).toBe(1);
  });

  it('reads an empty list as no certificates', () => {
    expect(parseTrustedProxyCertificates('').size).toBe(0);
    expect(parseTrustedProxyCertificates(' ,, ').size).toBe(0);
  });

  it('refuses an invalid entry, naming it', () => {
    expect(() => parseTrustedProxyCertificates(`${first.toString('hex')}, deadbeef`)).toThrow(
      "entry 2: 'deadbeef' is not a SHA-256 fingerprint",
    );
  });
});

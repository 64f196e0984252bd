import { createHash, X509Certificate } from 'node:crypto';
import {
  CertificateVerifier,
  describeCertificate,
  fingerprintOf,
  MAX_INTERMEDIATES,
  MAX_PRESENTED_CHAIN,
} from './certificate-verifier';
import {
  buildCertificateAuthority,
  buildIntermediate,
  buildLeaf,
  buildTestPki,
  bundleOf,
  EXTENDED_KEY_USAGE,
  TestCertificate,
  TestPki,
} from './testing/certificate-builders';

const DAY_MS = 24 * 60 * 60 * 1000;

describe('CertificateVerifier', () => {
  let pki: TestPki;
  let verifier: CertificateVerifier;

  beforeAll(async () => {
    pki = await buildTestPki();
    verifier = new CertificateVerifier(pki.ca.pem);
  });

  function expectRefused(result: ReturnType<CertificateVerifier['verify']>, detail: RegExp): void {
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.detail).toMatch(detail);
    }
  }

  describe('accepting', () => {
    it('accepts a clientAuth leaf issued by the bundle CA', () => {
      const result = verifier.verify(pki.clientLeaf.certificate);

      expect(result).toEqual({
        ok: true,
        certificate: describeCertificate(pki.clientLeaf.certificate),
      });
    });

    it('accepts the leaf as DER bytes and as PEM text', () => {
      expect(verifier.verify(pki.clientLeaf.der).ok).toBe(true);
      expect(verifier.verify(pki.clientLeaf.pem).ok).toBe(true);
    });

    it('describes the certificate: fingerprint, thumbprint, names, serial, dates', () => {
      const result = verifier.verify(pki.clientLeaf.der);
      const digest = createHash('sha256').update(pki.clientLeaf.der).digest();

      expect(result.ok && result.certificate).toEqual({
        fingerprint: digest.toString('hex'),
        thumbprintS256: digest.toString('base64url'),
        subject: 'CN=alice, O=Gatehouse',
        issuer: 'CN=Gatehouse Test CA, O=Gatehouse',
        serialNumber: pki.clientLeaf.certificate.serialNumber.toLowerCase(),
        notBefore: new Date(pki.clientLeaf.certificate.validFrom),
        notAfter: new Date(pki.clientLeaf.certificate.validTo),
        der: pki.clientLeaf.der,
      });
    });

    it('accepts a leaf without an extended key usage extension by default', () => {
      expect(verifier.verify(pki.noExtendedKeyUsageLeaf.der).ok).toBe(true);
    });

    it('accepts a leaf whose intermediate was presented with it', () => {
      const result = verifier.verify(pki.intermediateLeaf.der, [pki.intermediate.certificate]);

      expect(result.ok).toBe(true);
    });

    it('accepts a leaf whose issuer is an intermediate held in the bundle', () => {
      const bundled = new CertificateVerifier(bundleOf(pki.ca, pki.intermediate));

      expect(bundled.verify(pki.intermediateLeaf.der).ok).toBe(true);
    });

    it('accepts a leaf issued by any CA of a bundle holding several', () => {
      const bundled = new CertificateVerifier(bundleOf(pki.otherCa, pki.ca));

      expect(bundled.verify(pki.clientLeaf.der).ok).toBe(true);
      expect(bundled.verify(pki.otherCaLeaf.der).ok).toBe(true);
    });

    it('accepts presented intermediates as DER bytes', () => {
      expect(verifier.verify(pki.intermediateLeaf.der, [pki.intermediate.der]).ok).toBe(true);
    });

    it('finds the real intermediate among decoys of the same name', async () => {
      const decoy = await buildIntermediate(pki.otherCa, { subject: pki.intermediate.subject });

      const result = verifier.verify(pki.intermediateLeaf.der, [
        decoy.certificate,
        pki.intermediate.certificate,
      ]);

      expect(result.ok).toBe(true);
    });
  });

  describe('refusing', () => {
    it('refuses a leaf with a serverAuth-only extended key usage', () => {
      expectRefused(verifier.verify(pki.serverOnlyLeaf.der), /not valid for client authentication/);
    });

    it('refuses a leaf whose extended key usage is only anyExtendedKeyUsage', async () => {
      const anyUsage = await buildLeaf(pki.ca, { extendedKeyUsages: [EXTENDED_KEY_USAGE.any] });

      expectRefused(verifier.verify(anyUsage.der), /not valid for client authentication/);
    });

    it('refuses a leaf without extended key usage when clientAuth is required', () => {
      const strict = new CertificateVerifier(pki.ca.pem, { requireClientAuthExtension: true });

      expectRefused(strict.verify(pki.noExtendedKeyUsageLeaf.der), /no extended key usage/);
      expect(strict.verify(pki.clientLeaf.der).ok).toBe(true);
    });

    it('refuses an expired leaf', () => {
      expectRefused(verifier.verify(pki.expiredLeaf.der), /client certificate expired/);
    });

    it('refuses a leaf that is not yet valid', () => {
      expectRefused(
        verifier.verify(pki.notYetValidLeaf.der),
        /client certificate is not yet valid/,
      );
    });

    it('refuses a self-signed copy of a real subject', () => {
      expect(pki.selfSignedCopy.certificate.subject).toBe(pki.clientLeaf.certificate.subject);

      expectRefused(verifier.verify(pki.selfSignedCopy.der), /does not chain/);
    });

    it('refuses a self-signed copy even when it is presented as its own chain', () => {
      const result = verifier.verify(pki.selfSignedCopy.der, [pki.selfSignedCopy.certificate]);

      expectRefused(result, /does not chain|not a CA/);
    });

    it('refuses a leaf signed by another key under the real CA name', () => {
      // The name check alone passes; only the signature check tells the impostor apart.
      expect(pki.impostorLeaf.certificate.checkIssued(pki.ca.certificate)).toBe(true);

      expectRefused(verifier.verify(pki.impostorLeaf.der), /does not chain/);
    });

    it('refuses a leaf from another CA', () => {
      expectRefused(verifier.verify(pki.otherCaLeaf.der), /does not chain/);
    });

    it('refuses an intermediate leaf when the intermediate is not presented', () => {
      expectRefused(verifier.verify(pki.intermediateLeaf.der), /does not chain/);
    });

    it('refuses a presented intermediate that another CA issued', async () => {
      const foreignIntermediate = await buildIntermediate(pki.otherCa);
      const leaf = await buildLeaf(foreignIntermediate);

      expectRefused(verifier.verify(leaf.der, [foreignIntermediate.certificate]), /does not chain/);
    });

    it('refuses a chain through an issuer that is not a CA', async () => {
      const endEntity = await buildLeaf(pki.ca, {
        subject: 'CN=not-a-ca, O=Gatehouse',
        omitKeyUsage: true,
      });
      const leaf = await buildLeaf(endEntity, { subject: 'CN=mallory, O=Gatehouse' });

      expectRefused(verifier.verify(leaf.der, [endEntity.certificate]), /not a CA/);
    });

    it('refuses a CA certificate presented as a client certificate', () => {
      expectRefused(verifier.verify(pki.ca.der), /is a CA certificate/);
      expectRefused(verifier.verify(pki.intermediate.der), /is a CA certificate/);
    });

    it('refuses a chain through an expired intermediate', async () => {
      const expiredIntermediate = await buildIntermediate(pki.ca, {
        notBefore: new Date(Date.now() - 30 * DAY_MS),
        notAfter: new Date(Date.now() - DAY_MS),
      });
      const leaf = await buildLeaf(expiredIntermediate);

      expectRefused(
        verifier.verify(leaf.der, [expiredIntermediate.certificate]),
        /issuer .* expired/,
      );
    });

    it('refuses an intermediate restricted to server authentication', async () => {
      const serverIntermediate = await buildIntermediate(pki.ca, {
        extendedKeyUsages: [EXTENDED_KEY_USAGE.serverAuth],
      });
      const leaf = await buildLeaf(serverIntermediate);

      expectRefused(
        verifier.verify(leaf.der, [serverIntermediate.certificate]),
        /not allowed to issue client certificates/,
      );
    });

    it('refuses every certificate once the bundle CA has expired', () => {
      const later = new CertificateVerifier(pki.ca.pem, {
        now: () => new Date(Date.now() + 400 * DAY_MS),
      });

      expectRefused(later.verify(pki.clientLeaf.der), /expired/);
    });

    it('judges dates by the injected clock', () => {
      const inAWeek = new CertificateVerifier(pki.ca.pem, {
        now: () => new Date(Date.now() + 7 * DAY_MS),
      });

      expect(inAWeek.verify(pki.notYetValidLeaf.der).ok).toBe(true);
    });

    it('refuses bytes that are not a certificate', () => {
      expectRefused(verifier.verify(Buffer.from('not a certificate')), /cannot be parsed/);
      expectRefused(
        verifier.verify('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'),
        /cannot be parsed/,
      );
    });

    it('refuses a presented chain member that cannot be parsed', () => {
      const result = verifier.verify(pki.intermediateLeaf.der, [Buffer.from('junk')]);

      expectRefused(result, /chain certificate cannot be parsed/);
    });

    it('describes the refused certificate for the audit record', () => {
      const result = verifier.verify(pki.otherCaLeaf.der);

      expect(result.ok).toBe(false);
      expect(!result.ok && result.certificate?.fingerprint).toBe(
        fingerprintOf(pki.otherCaLeaf.der),
      );
      expect(!result.ok && result.certificate?.issuer).toBe('CN=Other CA, O=Elsewhere');
    });

    it('refuses a presented chain longer than the limit', () => {
      const chain = Array.from(
        { length: MAX_PRESENTED_CHAIN + 1 },
        () => pki.intermediate.certificate,
      );

      expectRefused(
        verifier.verify(pki.intermediateLeaf.der, chain),
        /chain certificates presented/,
      );
    });

    it(`refuses a path through more than ${MAX_INTERMEDIATES} intermediates`, async () => {
      const intermediates: TestCertificate[] = [];
      let issuer = pki.ca;
      for (let level = 0; level <= MAX_INTERMEDIATES; level += 1) {
        issuer = await buildIntermediate(issuer, { subject: `CN=Level ${level}, O=Gatehouse` });
        intermediates.push(issuer);
      }
      const deepLeaf = await buildLeaf(issuer);
      const presented = intermediates.map((entry) => entry.certificate);

      expectRefused(verifier.verify(deepLeaf.der, presented), /chain longer than/);
    });

    it(`accepts a path through exactly ${MAX_INTERMEDIATES} intermediates`, async () => {
      const presented: X509Certificate[] = [];
      let issuer = pki.ca;
      for (let level = 0; level < MAX_INTERMEDIATES; level += 1) {
        issuer = await buildIntermediate(issuer, { subject: `CN=Step ${level}, O=Gatehouse` });
        presented.push(issuer.certificate);
      }
      const leaf = await buildLeaf(issuer);

      expect(verifier.verify(leaf.der, presented.reverse()).ok).toBe(true);
    });
  });

  describe('CA bundle', () => {
    it('refuses a bundle with no certificate', () => {
      expect(() => new CertificateVerifier('')).toThrow(/no PEM certificate/);
    });

    it('refuses a bundle holding a certificate that is not a CA', () => {
      expect(() => new CertificateVerifier(bundleOf(pki.ca, pki.clientLeaf))).toThrow(
        /not a CA: CN=alice, O=Gatehouse/,
      );
    });

    it('refuses a bundle holding a private key', () => {
      expect(() => new CertificateVerifier(pki.ca.pem + pki.ca.keyPem)).toThrow(/PRIVATE KEY/);
    });

    it('exposes its trust anchors', async () => {
      const extraCa = await buildCertificateAuthority({ subject: 'CN=Extra CA' });
      const bundled = new CertificateVerifier(bundleOf(pki.ca, extraCa));

      expect(bundled.trustAnchors.map((anchor) => anchor.subject)).toEqual([
        pki.ca.certificate.subject,
        'CN=Extra CA',
      ]);
    });
  });
});

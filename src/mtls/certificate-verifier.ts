import { X509Certificate } from 'node:crypto';
import { fingerprintOf, thumbprintOf } from './fingerprint';
import { decodeCertificatePems } from './pem';
import { VerifiedCertificate } from './verified-certificate';

export { fingerprintOf, normalizeFingerprint, thumbprintOf } from './fingerprint';

export const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';
const ANY_EXTENDED_KEY_USAGE_OID = '2.5.29.37.0';

/** Intermediates allowed between a leaf and the bundle; bounds the search an attacker can cause. */
export const MAX_INTERMEDIATES = 4;
/** Certificates accepted alongside a leaf; a longer presented chain is refused outright. */
export const MAX_PRESENTED_CHAIN = 8;
const MAX_BUNDLE_CERTIFICATES = 1000;

export interface CertificateVerifierOptions {
  /** Refuse leaves with no extended key usage extension at all (default: accept them). */
  requireClientAuthExtension?: boolean;
  now?: () => Date;
}

export type CertificateVerification =
  | { ok: true; certificate: VerifiedCertificate }
  | { ok: false; detail: string; certificate?: Partial<VerifiedCertificate> };

export type CertificateInput = X509Certificate | Buffer | string;

type ChainOutcome = { ok: true } | { ok: false; detail: string };

/**
 * Checks a client certificate against the configured CA bundle: issuer names and signatures at
 * every step, issuers being CAs, validity dates of the whole chain and the client-auth purpose.
 * Certificates forwarded in headers go through the same checks as those seen in a handshake.
 */
export class CertificateVerifier {
  private readonly anchors: readonly X509Certificate[];
  private readonly requireClientAuthExtension: boolean;
  private readonly now: () => Date;

  constructor(caBundlePem: string, options: CertificateVerifierOptions = {}) {
    this.anchors = parseBundle(caBundlePem);
    this.requireClientAuthExtension = options.requireClientAuthExtension ?? false;
    this.now = options.now ?? (() => new Date());
  }

  get trustAnchors(): readonly X509Certificate[] {
    return this.anchors;
  }

  /**
   * `presentedChain` holds intermediates sent with the leaf; they are never trusted by themselves.
   */
  verify(
    leaf: CertificateInput,
    presentedChain: readonly CertificateInput[] = [],
  ): CertificateVerification {
    const certificate = toCertificate(leaf);
    if (!certificate) {
      return { ok: false, detail: 'client certificate cannot be parsed' };
    }
    const described = describeCertificate(certificate);
    const refuse = (detail: string): CertificateVerification => ({
      ok: false,
      detail,
      certificate: described,
    });

    if (presentedChain.length > MAX_PRESENTED_CHAIN) {
      return refuse(`more than ${MAX_PRESENTED_CHAIN} chain certificates presented`);
    }
    // A CA certificate is public; accepting one as a client identity would let anyone who can
    // forward it claim the CA's subject.
    if (certificate.ca) {
      return refuse('client certificate is a CA certificate');
    }
    const intermediates = presentedChain
      .map(toCertificate)
      .filter((entry): entry is X509Certificate => entry !== null);
    if (intermediates.length !== presentedChain.length) {
      return refuse('a chain certificate cannot be parsed');
    }
    const now = this.now();
    const leafProblem =
      datesProblem(certificate, now, 'client certificate') ?? this.purposeProblem(certificate);
    if (leafProblem) {
      return refuse(leafProblem);
    }

    const chain = this.buildChain(certificate, intermediates, now, new Set(), 0);
    return chain.ok ? { ok: true, certificate: described } : refuse(chain.detail);
  }

  private purposeProblem(certificate: X509Certificate): string | null {
    const usages = certificate.keyUsage;
    if (usages === undefined) {
      return this.requireClientAuthExtension
        ? 'client certificate has no extended key usage extension'
        : null;
    }
    return usages.includes(CLIENT_AUTH_OID)
      ? null
      : 'client certificate is not valid for client authentication';
  }

  /**
   * Depth-first search for an issuer path to a bundle certificate. Each presented intermediate is
   * explored at most once, so a crafted chain of mutually signed certificates stays cheap.
   */
  private buildChain(
    subject: X509Certificate,
    presented: X509Certificate[],
    now: Date,
    explored: Set<X509Certificate>,
    depth: number,
  ): ChainOutcome {
    let firstFailure: string | null = null;

    for (const anchor of this.anchors) {
      if (issuedBy(subject, anchor)) {
        const problem = issuerProblem(anchor, now);
        if (!problem) {
          return { ok: true };
        }
        firstFailure ??= problem;
      }
    }

    for (const intermediate of presented) {
      if (explored.has(intermediate) || !issuedBy(subject, intermediate)) {
        continue;
      }
      explored.add(intermediate);
      const problem =
        issuerProblem(intermediate, now) ??
        (depth >= MAX_INTERMEDIATES
          ? `chain longer than ${MAX_INTERMEDIATES} intermediates`
          : null);
      if (problem) {
        firstFailure ??= problem;
        continue;
      }
      const above = this.buildChain(intermediate, presented, now, explored, depth + 1);
      if (above.ok) {
        return above;
      }
      firstFailure ??= above.detail;
    }

    return { ok: false, detail: firstFailure ?? 'certificate does not chain to the CA bundle' };
  }
}

/** Builds the VerifiedCertificate description of a certificate, whether or not it verified. */
export function describeCertificate(certificate: X509Certificate): VerifiedCertificate {
  const der = certificate.raw;
  return {
    fingerprint: fingerprintOf(der),
    thumbprintS256: thumbprintOf(der),
    subject: oneLineName(certificate.subject),
    issuer: oneLineName(certificate.issuer),
    serialNumber: certificate.serialNumber.toLowerCase(),
    notBefore: certificateTime(certificate.validFrom),
    notAfter: certificateTime(certificate.validTo),
    der,
  };
}

function parseBundle(caBundlePem: string): X509Certificate[] {
  const decoded = decodeCertificatePems(caBundlePem, MAX_BUNDLE_CERTIFICATES);
  if (!decoded.ok) {
    throw new Error(`CA bundle is not usable: ${decoded.detail}`);
  }
  const anchors = decoded.ders.map((der) => new X509Certificate(der));
  const notCa = anchors.find((anchor) => !anchor.ca);
  if (notCa) {
    throw new Error(
      `CA bundle holds a certificate that is not a CA: ${oneLineName(notCa.subject)}`,
    );
  }
  return anchors;
}

function toCertificate(input: CertificateInput): X509Certificate | null {
  if (input instanceof X509Certificate) {
    return input;
  }
  try {
    return new X509Certificate(input);
  } catch {
    return null;
  }
}

/**
 * The name must match AND the issuer's key must verify the signature: a name alone is forgeable.
 */
function issuedBy(subject: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return subject.checkIssued(issuer) && subject.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function issuerProblem(issuer: X509Certificate, now: Date): string | null {
  if (!issuer.ca) {
    return `issuer is not a CA: ${oneLineName(issuer.subject)}`;
  }
  const usages = issuer.keyUsage;
  // An issuer limited by extended key usage to other purposes may not vouch for client identities.
  if (
    usages !== undefined &&
    !usages.includes(CLIENT_AUTH_OID) &&
    !usages.includes(ANY_EXTENDED_KEY_USAGE_OID)
  ) {
    return `issuer is not allowed to issue client certificates: ${oneLineName(issuer.subject)}`;
  }
  return datesProblem(issuer, now, `issuer ${oneLineName(issuer.subject)}`);
}

function datesProblem(certificate: X509Certificate, now: Date, role: string): string | null {
  const notBefore = certificateTime(certificate.validFrom);
  const notAfter = certificateTime(certificate.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    return `${role} has unreadable validity dates`;
  }
  if (now < notBefore) {
    return `${role} is not yet valid (from ${notBefore.toISOString()})`;
  }
  if (now > notAfter) {
    return `${role} expired at ${notAfter.toISOString()}`;
  }
  return null;
}

/** node:crypto gives dates as OpenSSL text such as `Jan  1 00:00:00 2030 GMT`. */
function certificateTime(text: string): Date {
  return new Date(text);
}

/** node:crypto prints one RDN per line, already escaped (RFC 2253); join them on one line. */
function oneLineName(name: string): string {
  return name.split('\n').join(', ');
}

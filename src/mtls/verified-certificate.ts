/** A client certificate that chained to the configured CA bundle and passed date and EKU checks. */
export interface VerifiedCertificate {
  /** SHA-256 of the DER encoding, lower-case hex without separators. */
  fingerprint: string;
  /** The same digest as base64url, the RFC 8705 `x5t#S256` confirmation value. */
  thumbprintS256: string;
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  der: Buffer;
}

/** Why a request carries no usable certificate, in the audit outcome vocabulary. */
export type CertificateRefusal = 'no_cert' | 'untrusted_cert' | 'spoofed_header';

export type ClientCertificateResult =
  | { status: 'verified'; certificate: VerifiedCertificate }
  | { status: 'absent' }
  | {
      status: 'refused';
      reason: 'untrusted_cert' | 'spoofed_header';
      detail: string;
      certificate?: Partial<VerifiedCertificate>;
    };

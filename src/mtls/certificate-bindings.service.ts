import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { VerifiedCertificate } from './verified-certificate';

/** A stored binding of one certificate (by SHA-256 fingerprint) to one user. */
export interface CertificateBinding {
  id: string;
  userId: string;
  normalizedUsername: string;
  fingerprint: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  certificateLogin: boolean;
  revokedAt: Date | null;
  suspendedAt: Date | null;
}

export class BindingConflictError extends Error {
  constructor() {
    super('that certificate is already bound to a user');
    this.name = 'BindingConflictError';
  }
}

interface BindingRow {
  id: string;
  user_id: string;
  normalized_username: string;
  fingerprint: string;
  subject: string;
  not_before: Date;
  not_after: Date;
  certificate_login: boolean;
  revoked_at: Date | null;
  suspended_at: Date | null;
}

function toBinding(row: BindingRow): CertificateBinding {
  return {
    id: row.id,
    userId: row.user_id,
    normalizedUsername: row.normalized_username,
    fingerprint: row.fingerprint.trim(),
    subject: row.subject,
    notBefore: new Date(row.not_before),
    notAfter: new Date(row.not_after),
    certificateLogin: row.certificate_login,
    revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at),
    suspendedAt: row.suspended_at === null ? null : new Date(row.suspended_at),
  };
}

const SELECT_BINDING = `
  SELECT b.id, b.user_id, u.normalized_username, b.fingerprint, b.subject, b.not_before,
         b.not_after, b.certificate_login, b.revoked_at, b.suspended_at
  FROM certificate_bindings b JOIN users u ON u.id = b.user_id`;

/**
 * Certificate to user, by the stored binding only: never by matching a subject name. Read on
 * every request (no cache), so revoke and unbind take effect at once on every replica.
 */
@Injectable()
export class CertificateBindingsService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** The binding of the attempt's certificate, looked up once per attempt. */
  async bindingOf(attempt: { binding?: CertificateBinding | null }, fingerprint: string) {
    if (attempt.binding === undefined) {
      attempt.binding = await this.findByFingerprint(fingerprint);
    }
    return attempt.binding;
  }

  async findByFingerprint(fingerprint: string): Promise<CertificateBinding | null> {
    const rows = (await this.dataSource.query(`${SELECT_BINDING} WHERE b.fingerprint = $1`, [
      fingerprint,
    ])) as BindingRow[];
    return rows.length === 0 ? null : toBinding(rows[0]);
  }

  async listForUser(userId: string): Promise<CertificateBinding[]> {
    const rows = (await this.dataSource.query(`${SELECT_BINDING} WHERE b.user_id = $1`, [
      userId,
    ])) as BindingRow[];
    return rows.map(toBinding);
  }

  async list(expiringBefore?: Date): Promise<CertificateBinding[]> {
    const rows = (await (expiringBefore
      ? this.dataSource.query(`${SELECT_BINDING} WHERE b.not_after < $1 ORDER BY b.not_after`, [
          expiringBefore,
        ])
      : this.dataSource.query(
          `${SELECT_BINDING} ORDER BY u.normalized_username, b.not_after`,
        ))) as BindingRow[];
    return rows.map(toBinding);
  }

  /** One certificate, one user: binding a fingerprint that is already bound fails. */
  async bind(
    userId: string,
    certificate: VerifiedCertificate,
    certificateLogin: boolean,
  ): Promise<void> {
    const inserted = (await this.dataSource.query(
      `INSERT INTO certificate_bindings
         (user_id, fingerprint, subject, issuer, serial_number, not_before, not_after,
          certificate_login)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (fingerprint) DO NOTHING
       RETURNING id`,
      [
        userId,
        certificate.fingerprint,
        certificate.subject,
        certificate.issuer,
        certificate.serialNumber,
        certificate.notBefore,
        certificate.notAfter,
        certificateLogin,
      ],
    )) as unknown[];
    if (inserted.length === 0) {
      throw new BindingConflictError();
    }
  }

  async unbind(fingerprint: string): Promise<CertificateBinding | null> {
    const binding = await this.findByFingerprint(fingerprint);
    if (binding) {
      await this.dataSource.query(`DELETE FROM certificate_bindings WHERE id = $1`, [binding.id]);
    }
    return binding;
  }

  async revoke(fingerprint: string): Promise<CertificateBinding | null> {
    const binding = await this.findByFingerprint(fingerprint);
    if (binding) {
      await this.dataSource.query(
        `UPDATE certificate_bindings SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`,
        [binding.id],
      );
      // Tokens issued with the certificate stop working too.
      await this.dataSource.query(`UPDATE users SET tokens_valid_after = now() WHERE id = $1`, [
        binding.userId,
      ]);
    }
    return binding;
  }

  async suspend(fingerprint: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE certificate_bindings SET suspended_at = coalesce(suspended_at, now())
       WHERE fingerprint = $1`,
      [fingerprint],
    );
  }
}

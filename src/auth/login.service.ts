import { Inject, Injectable, Optional } from '@nestjs/common';
import { AttemptContext } from '../audit/attempt-context';
import { AttemptOutcome } from '../common/attempt-outcome';
import { invalidCredentials } from '../common/gatehouse.error';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { FailedPasswordTagger } from '../detection/failed-password-tagger';
import {
  CertificateBinding,
  CertificateBindingsService,
} from '../mtls/certificate-bindings.service';
import { User } from '../users/user.entity';
import { UsersService } from '../users/users.service';

/** Why a binding cannot vouch for a user right now, or undefined when it can. */
function bindingRefusal(binding: CertificateBinding | null, now: Date): AttemptOutcome | undefined {
  if (!binding) {
    return 'cert_unbound';
  }
  if (binding.revokedAt || binding.suspendedAt) {
    return 'cert_revoked';
  }
  if (binding.notAfter < now || binding.notBefore > now) {
    return 'untrusted_cert';
  }
  return undefined;
}

/**
 * The decisions after throttling: the certificate policy, then the password check. Every
 * refusal is the same 401 to the client; the outcome only reaches the audit.
 */
@Injectable()
export class LoginService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly users: UsersService,
    private readonly bindings: CertificateBindingsService,
    @Optional() private readonly passwordTagger?: FailedPasswordTagger,
  ) {}

  async authenticatePassword(attempt: AttemptContext, password: string): Promise<User> {
    const user = await this.users.findByNormalizedUsername(attempt.normalizedUsername ?? '');
    if (user) {
      attempt.userId = user.id;
      attempt.usernameResolved = true;
    }
    await this.checkCertificatePolicy(attempt, user);

    attempt.reachedHash = true;
    const matches = await this.users.verifyPassword(user, password);
    if (!user || !matches) {
      attempt.failedPasswordTag = this.passwordTagger?.tag(password);
    }
    if (!user) {
      throw invalidCredentials('unknown_user');
    }
    if (!matches) {
      throw invalidCredentials('bad_password');
    }
    if (user.disabled) {
      throw invalidCredentials('disabled');
    }
    return user;
  }

  async authenticateCertificate(attempt: AttemptContext): Promise<User> {
    const certificate = this.requireVerifiedCertificate(attempt);
    const binding = await this.bindings.bindingOf(attempt, certificate.fingerprint);
    const refusal = bindingRefusal(binding, new Date());
    if (refusal || !binding) {
      throw invalidCredentials(refusal ?? 'cert_unbound');
    }
    attempt.normalizedUsername = binding.normalizedUsername;
    attempt.certificateBound = true;
    attempt.userId = binding.userId;
    attempt.usernameResolved = true;
    if (!binding.certificateLogin) {
      throw invalidCredentials('cert_unbound', 'binding does not allow certificate-only login');
    }
    const user = await this.users.findById(binding.userId);
    if (!user || user.disabled) {
      throw invalidCredentials('disabled');
    }
    return user;
  }

  private requireVerifiedCertificate(attempt: AttemptContext) {
    const certificate = attempt.certificate;
    if (certificate?.status === 'verified') {
      return certificate.certificate;
    }
    if (certificate?.status === 'refused') {
      throw invalidCredentials(certificate.reason, certificate.detail);
    }
    throw invalidCredentials('no_cert');
  }

  /**
   * CERT_BINDING=required: a password login also needs a valid certificate bound to the same
   * user. `optional`: a certificate is not needed, but one that is presented must be valid and
   * bound to this user. `off`: certificates play no part.
   */
  private async checkCertificatePolicy(attempt: AttemptContext, user: User | null): Promise<void> {
    const policy = this.config.certBinding;
    const certificate = attempt.certificate;
    if (policy === 'off' || (policy === 'optional' && certificate?.status !== 'verified')) {
      if (policy === 'optional' && certificate?.status === 'refused') {
        throw invalidCredentials(certificate.reason, certificate.detail);
      }
      return;
    }
    const verified = this.requireVerifiedCertificate(attempt);
    const binding = await this.bindings.bindingOf(attempt, verified.fingerprint);
    const refusal = bindingRefusal(binding, new Date());
    if (refusal) {
      throw invalidCredentials(refusal);
    }
    if (!user || binding!.userId !== user.id) {
      throw invalidCredentials('cert_mismatch');
    }
    attempt.certificateBound = true;
  }
}

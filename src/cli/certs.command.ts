import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AppConfig } from '../config/app-config';
import { parseDuration } from '../config/duration';
import { ensurePrivateDirectory } from '../database/data-dir-lock';
import {
  BindingConflictError,
  CertificateBinding,
  CertificateBindingsService,
} from '../mtls/certificate-bindings.service';
import { enrolClientCertificate } from '../mtls/certificate-enrolment';
import { describeCertificate, normalizeFingerprint } from '../mtls/certificate-verifier';
import { VerifiedCertificate } from '../mtls/verified-certificate';
import { developmentPkiPaths, ensureDevelopmentPki } from '../pki/dev-pki';
import { recordAdminAction } from './admin-actions';
import { ParsedArguments } from './arguments';
import { CliError, UsageError } from './cli-error';
import { Command } from './command';
import { withServiceDatabase } from './database';
import { printable, writeJson, writeLine, writeTable } from './output';
import { requireUser, usersServiceFor } from './users.command';

function pkiDirectory(config: AppConfig): string {
  return path.join(config.dataDir, 'pki');
}

async function initPki(_parsed: ParsedArguments, config: AppConfig): Promise<void> {
  ensurePrivateDirectory(config.dataDir);
  const pki = await ensureDevelopmentPki(pkiDirectory(config));
  const state = (created: boolean): string => (created ? 'created' : 'kept');
  writeLine(`CA (${state(pki.createdCertificateAuthority)}):`);
  writeLine(`  certificate  ${pki.caCertificate}`);
  writeLine(`  key          ${pki.caKey}`);
  writeLine(
    `server certificate for localhost, 127.0.0.1, ::1 (${state(pki.createdServerCertificate)}):`,
  );
  writeLine(`  certificate  ${pki.serverCertificate}`);
  writeLine(`  key          ${pki.serverKey}`);
}

function requireCertificateAuthority(config: AppConfig): string {
  const pkiDir = pkiDirectory(config);
  const paths = developmentPkiPaths(pkiDir);
  if (!fs.existsSync(paths.caCertificate) || !fs.existsSync(paths.caKey)) {
    throw new CliError(`no CA under ${pkiDir}: run \`gatehouse certs init\` first`);
  }
  return pkiDir;
}

/** Adds whom a conflicting fingerprint is bound to, which is what the operator needs next. */
async function explainConflict(
  bindings: CertificateBindingsService,
  fingerprint: string,
): Promise<CliError> {
  const holder = await bindings.findByFingerprint(fingerprint);
  const owner = holder ? ` (to ${printable(holder.normalizedUsername)})` : '';
  return new CliError(`certificate ${fingerprint} is already bound${owner}; unbind it first`);
}

async function issueCertificate(parsed: ParsedArguments, config: AppConfig): Promise<void> {
  const out = parsed.option('out');
  if (out === undefined) {
    throw new UsageError('missing --out <dir>; usage: gatehouse certs issue <user> --out <dir>');
  }
  const pkiDir = requireCertificateAuthority(config);
  const outDir = path.resolve(out);
  const certificateLogin = parsed.flag('certificate-login');

  const enrolled = await withServiceDatabase(config, async (connection) => {
    const user = await requireUser(usersServiceFor(connection, config), parsed.positional('user'));
    const result = await enrolClientCertificate({
      pkiDir,
      userId: user.id,
      username: user.normalizedUsername,
      outDir,
      certificateLogin,
      bindings: new CertificateBindingsService(connection.dataSource),
    });
    await recordAdminAction(connection.dataSource, 'certificate.issue', user.normalizedUsername, {
      fingerprint: result.fingerprint,
      certificate_login: certificateLogin,
    });
    return result;
  });

  writeLine(`issued and bound certificate ${enrolled.fingerprint}`);
  writeLine(`  certificate  ${enrolled.certificatePath}`);
  writeLine(`  key          ${enrolled.keyPath}`);
  writeLine(`  PKCS#12      ${enrolled.pkcs12Path}`);
  writeLine(`  CA           ${enrolled.caPath}`);
  // The bundle password exists nowhere else: it is shown this once, for the certificate's owner.
  writeLine(`PKCS#12 password (shown once): ${enrolled.pkcs12Password}`);
}

function readCertificate(file: string): VerifiedCertificate {
  let contents: Buffer;
  try {
    contents = fs.readFileSync(file);
  } catch (error) {
    throw new CliError(
      `cannot read ${printable(file)}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  let certificate: VerifiedCertificate;
  try {
    certificate = describeCertificate(new X509Certificate(contents));
  } catch {
    throw new CliError(`${printable(file)} holds no PEM or DER certificate`);
  }
  if (certificate.notAfter.getTime() <= Date.now()) {
    throw new CliError(
      `the certificate in ${printable(file)} expired on ${certificate.notAfter.toISOString()}`,
    );
  }
  return certificate;
}

async function bindCertificate(parsed: ParsedArguments, config: AppConfig): Promise<void> {
  const certificate = readCertificate(parsed.positional('pem-file'));
  const certificateLogin = parsed.flag('certificate-login');

  const user = await withServiceDatabase(config, async (connection) => {
    const found = await requireUser(usersServiceFor(connection, config), parsed.positional('user'));
    const bindings = new CertificateBindingsService(connection.dataSource);
    try {
      await bindings.bind(found.id, certificate, certificateLogin);
    } catch (error) {
      throw error instanceof BindingConflictError
        ? await explainConflict(bindings, certificate.fingerprint)
        : error;
    }
    await recordAdminAction(connection.dataSource, 'certificate.bind', found.normalizedUsername, {
      fingerprint: certificate.fingerprint,
      certificate_login: certificateLogin,
    });
    return found;
  });

  const login = certificateLogin ? ', certificate-only login allowed' : '';
  writeLine(`bound ${certificate.fingerprint} to ${printable(user.normalizedUsername)}${login}`);
}

function fingerprintArgument(parsed: ParsedArguments): string {
  try {
    return normalizeFingerprint(parsed.positional('fingerprint'));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function notBound(fingerprint: string): CliError {
  return new CliError(`no certificate with fingerprint ${fingerprint} is bound`);
}

async function unbindCertificate(parsed: ParsedArguments, config: AppConfig): Promise<void> {
  const fingerprint = fingerprintArgument(parsed);
  const binding = await withServiceDatabase(config, async (connection) => {
    const removed = await new CertificateBindingsService(connection.dataSource).unbind(fingerprint);
    if (removed === null) {
      throw notBound(fingerprint);
    }
    // Tokens obtained with the certificate must not outlive its binding.
    await usersServiceFor(connection, config).invalidateTokens(removed.userId);
    await recordAdminAction(
      connection.dataSource,
      'certificate.unbind',
      removed.normalizedUsername,
      {
        fingerprint,
      },
    );
    return removed;
  });
  writeLine(
    `unbound ${fingerprint} from ${printable(binding.normalizedUsername)}; its tokens stop working`,
  );
}

async function revokeCertificate(parsed: ParsedArguments, config: AppConfig): Promise<void> {
  const fingerprint = fingerprintArgument(parsed);
  const binding = await withServiceDatabase(config, async (connection) => {
    const revoked = await new CertificateBindingsService(connection.dataSource).revoke(fingerprint);
    if (revoked === null) {
      throw notBound(fingerprint);
    }
    await recordAdminAction(
      connection.dataSource,
      'certificate.revoke',
      revoked.normalizedUsername,
      {
        fingerprint,
      },
    );
    return revoked;
  });
  const already = binding.revokedAt === null ? '' : ' (it was already revoked)';
  writeLine(
    `revoked ${fingerprint} of ${printable(binding.normalizedUsername)}${already}; ` +
      'its tokens stop working',
  );
}

function bindingState(binding: CertificateBinding, now: number): string {
  if (binding.revokedAt !== null) {
    return 'revoked';
  }
  if (binding.suspendedAt !== null) {
    return 'suspended';
  }
  return binding.notAfter.getTime() <= now ? 'expired' : 'active';
}

function expiringBefore(parsed: ParsedArguments): Date | undefined {
  const window = parsed.option('expiring');
  if (window === undefined) {
    return undefined;
  }
  try {
    return new Date(Date.now() + parseDuration(window));
  } catch (error) {
    throw new UsageError(`--expiring: ${(error as Error).message}`);
  }
}

async function listCertificates(parsed: ParsedArguments, config: AppConfig): Promise<void> {
  const before = expiringBefore(parsed);
  const bindings = await withServiceDatabase(config, (connection) =>
    new CertificateBindingsService(connection.dataSource).list(before),
  );
  const now = Date.now();
  const described = bindings.map((binding) => ({
    fingerprint: binding.fingerprint,
    username: binding.normalizedUsername,
    subject: binding.subject,
    not_before: binding.notBefore.toISOString(),
    not_after: binding.notAfter.toISOString(),
    certificate_login: binding.certificateLogin,
    state: bindingState(binding, now),
    revoked_at: binding.revokedAt?.toISOString() ?? null,
    suspended_at: binding.suspendedAt?.toISOString() ?? null,
  }));
  if (parsed.flag('json')) {
    writeJson({ certificates: described });
    return;
  }
  writeTable(
    ['FINGERPRINT', 'USER', 'NOT AFTER', 'STATE', 'CERT LOGIN'],
    described.map((binding) => [
      binding.fingerprint,
      binding.username,
      binding.not_after,
      binding.state,
      binding.certificate_login ? 'yes' : 'no',
    ]),
  );
}

export const CERTS_COMMANDS: Command[] = [
  {
    name: ['certs', 'init'],
    usage: 'certs init',
    summary: 'create the development CA and server certificate under DATA_DIR/pki',
    arguments: { positionals: [] },
    run: initPki,
  },
  {
    name: ['certs', 'issue'],
    usage: 'certs issue <user> --out <dir> [--certificate-login]',
    summary: 'issue a client certificate from the development CA and bind it to a user',
    arguments: { positionals: ['user'], flags: ['certificate-login'], options: ['out'] },
    run: issueCertificate,
  },
  {
    name: ['certs', 'bind'],
    usage: 'certs bind <user> <pem-file> [--certificate-login]',
    summary: 'bind an existing client certificate to a user',
    arguments: { positionals: ['user', 'pem-file'], flags: ['certificate-login'] },
    run: bindCertificate,
  },
  {
    name: ['certs', 'unbind'],
    usage: 'certs unbind <fingerprint>',
    summary: 'remove a binding; the user’s tokens stop working',
    arguments: { positionals: ['fingerprint'] },
    run: unbindCertificate,
  },
  {
    name: ['certs', 'revoke'],
    usage: 'certs revoke <fingerprint>',
    summary: 'refuse a certificate from now on (the binding is kept, marked revoked)',
    arguments: { positionals: ['fingerprint'] },
    run: revokeCertificate,
  },
  {
    name: ['certs', 'list'],
    usage: 'certs list [--expiring 30d] [--json]',
    summary: 'list bound certificates, or only those expiring within a duration',
    arguments: { positionals: [], flags: ['json'], options: ['expiring'] },
    run: listCertificates,
  },
];

import { randomBytes } from 'node:crypto';
import { RunningService } from '../bootstrap';
import { AppConfig } from '../config/app-config';
import { UsersService } from '../users/users.service';
import { CertificateBindingsService } from './certificate-bindings.service';
import { enrolClientCertificate } from './certificate-enrolment';

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * The first development start in direct mode: an `admin` user with a one-time password and a
 * bound client certificate under DATA_DIR/pki, and curl lines that work. Printed once, to the
 * terminal only; the password is never logged or stored anywhere but as its hash.
 */
export async function prepareDevelopmentAdmin(
  running: RunningService,
  config: AppConfig,
): Promise<void> {
  const pkiDir = running.tls?.developmentPkiDir;
  if (!pkiDir || config.production) {
    return;
  }
  const users = running.app.get(UsersService);
  if ((await users.list()).length > 0) {
    return;
  }
  const password = randomBytes(15).toString('base64url');
  const admin = await users.create({ username: 'admin', password, roles: ['admin'] });
  const enrolled = await enrolClientCertificate({
    pkiDir,
    userId: admin.id,
    username: 'admin',
    outDir: pkiDir,
    certificateLogin: false,
    bindings: running.app.get(CertificateBindingsService),
  });
  const tlsFlags = [
    `--cacert ${shellQuote(enrolled.caPath)}`,
    `--cert ${shellQuote(enrolled.certificatePath)}`,
    `--key ${shellQuote(enrolled.keyPath)}`,
  ].join(' ');
  const pkcs12 = `PKCS#12: ${enrolled.pkcs12Path}, password ${enrolled.pkcs12Password}`;
  const body = JSON.stringify({ username: 'admin', password });
  const loginBody = `-H 'content-type: application/json' -d ${shellQuote(body)}`;
  process.stdout.write(
    [
      '',
      'Development setup (shown once):',
      `  admin password: ${password}`,
      `  client certificate: ${enrolled.certificatePath} (${pkcs12})`,
      '',
      'Log in with certificate and password:',
      `  curl ${tlsFlags} ${loginBody} ${running.url}/auth/login`,
      'Then, with the access token:',
      `  curl ${tlsFlags} -H "authorization: Bearer $TOKEN" ${running.url}/auth/me`,
      '',
    ].join('\n'),
  );
}

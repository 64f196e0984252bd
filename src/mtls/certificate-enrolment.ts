import { X509Certificate, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportPkcs12 } from '../pki/pkcs12';
import { issueClientCertificate } from '../pki/client-certificate';
import { developmentPkiPaths } from '../pki/dev-pki';
import { writePrivateFile, writePublicFile, ensurePrivateDirectory } from '../pki/private-file';
import { describeCertificate } from './certificate-verifier';
import { CertificateBindingsService } from './certificate-bindings.service';

export interface EnrolledCertificate {
  fingerprint: string;
  certificatePath: string;
  keyPath: string;
  pkcs12Path: string;
  pkcs12Password: string;
  caPath: string;
}

/** File names only from a safe alphabet, so a username cannot steer a path. */
function fileStem(username: string): string {
  const stem = username.replace(/[^a-zA-Z0-9._-]/g, '_').replace(/^\.+/, '_');
  return stem === '' ? 'client' : stem.slice(0, 64);
}

/**
 * Issues a client certificate from the CA under `pkiDir`, binds it to the user, and writes
 * `<out>/<user>.crt`, `.key` (0600), `.p12` (0600, with a generated password) and `ca.crt`.
 */
export async function enrolClientCertificate(options: {
  pkiDir: string;
  userId: string;
  username: string;
  outDir: string;
  certificateLogin: boolean;
  bindings: CertificateBindingsService;
}): Promise<EnrolledCertificate> {
  const paths = developmentPkiPaths(options.pkiDir);
  const ca = {
    certificatePem: fs.readFileSync(paths.caCertificate, 'utf8'),
    privateKeyPem: fs.readFileSync(paths.caKey, 'utf8'),
  };
  const issued = await issueClientCertificate(ca, { commonName: options.username });
  await options.bindings.bind(
    options.userId,
    describeCertificate(new X509Certificate(issued.certificatePem)),
    options.certificateLogin,
  );
  await ensurePrivateDirectory(options.outDir);
  const stem = path.join(options.outDir, fileStem(options.username));
  const pkcs12Password = randomBytes(12).toString('base64url');
  const enrolled: EnrolledCertificate = {
    fingerprint: issued.fingerprint,
    certificatePath: `${stem}.crt`,
    keyPath: `${stem}.key`,
    pkcs12Path: `${stem}.p12`,
    pkcs12Password,
    caPath: path.join(options.outDir, 'ca.crt'),
  };
  await writePublicFile(enrolled.certificatePath, issued.certificatePem);
  await writePrivateFile(enrolled.keyPath, issued.privateKeyPem);
  await writePrivateFile(
    enrolled.pkcs12Path,
    exportPkcs12({ ...issued, caCertificatePem: ca.certificatePem, password: pkcs12Password }),
  );
  if (path.resolve(enrolled.caPath) !== path.resolve(paths.caCertificate)) {
    await writePublicFile(enrolled.caPath, ca.certificatePem);
  }
  return enrolled;
}

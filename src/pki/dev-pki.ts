import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCertificateAuthority } from './certificate-authority';
import { CertificateAuthority } from './pki.types';
import { ensurePrivateDirectory, writePrivateFile, writePublicFile } from './private-file';
import { issueServerCertificate } from './server-certificate';

/** The names a development server answers to; `gatehouse certs init` uses the same. */
export const DEVELOPMENT_SERVER_NAMES = ['localhost', '127.0.0.1', '::1'];
export const DEVELOPMENT_CA_COMMON_NAME = 'Gatehouse Development CA';
const CA_VALID_DAYS = 3650;
const SERVER_VALID_DAYS = 825;

export interface DevelopmentPkiPaths {
  directory: string;
  caCertificate: string;
  caKey: string;
  serverCertificate: string;
  serverKey: string;
}

export interface DevelopmentPki extends DevelopmentPkiPaths {
  /** Whether this call created the CA pair (false: the files on disk were reused). */
  createdCertificateAuthority: boolean;
  /** Whether this call issued the server pair (false: the files on disk were reused). */
  createdServerCertificate: boolean;
}

export function developmentPkiPaths(directory: string): DevelopmentPkiPaths {
  return {
    directory,
    caCertificate: join(directory, 'ca.crt'),
    caKey: join(directory, 'ca.key'),
    serverCertificate: join(directory, 'server.crt'),
    serverKey: join(directory, 'server.key'),
  };
}

/**
 * Makes sure `directory` holds a development CA and a server certificate for localhost. Whatever
 * pair is already complete on disk is kept, so a restart never invalidates issued client
 * certificates. Half a pair is an error rather than something to overwrite: it usually means an
 * operator copied files in by hand.
 */
export async function ensureDevelopmentPki(directory: string): Promise<DevelopmentPki> {
  const paths = developmentPkiPaths(directory);
  await ensurePrivateDirectory(directory);

  const caPresent = await pairPresence(paths.caCertificate, paths.caKey);
  const serverPresent = await pairPresence(paths.serverCertificate, paths.serverKey);
  if (!caPresent && serverPresent) {
    throw new Error(
      `${paths.serverCertificate} exists without ${paths.caCertificate}; ` +
        'remove the server pair or supply the CA that issued it',
    );
  }

  if (!serverPresent) {
    const ca = caPresent ? await readCertificateAuthority(paths) : await createDevelopmentCa(paths);
    await writeServerPair(paths, ca);
  }

  return {
    ...paths,
    createdCertificateAuthority: !caPresent,
    createdServerCertificate: !serverPresent,
  };
}

async function pairPresence(certificatePath: string, keyPath: string): Promise<boolean> {
  const [certificateExists, keyExists] = await Promise.all([
    exists(certificatePath),
    exists(keyPath),
  ]);
  if (certificateExists !== keyExists) {
    const missing = certificateExists ? keyPath : certificatePath;
    throw new Error(`${missing} is missing while its pair exists; restore it or remove both`);
  }
  return certificateExists;
}

async function createDevelopmentCa(paths: DevelopmentPkiPaths): Promise<CertificateAuthority> {
  const ca = await createCertificateAuthority({
    commonName: DEVELOPMENT_CA_COMMON_NAME,
    validDays: CA_VALID_DAYS,
  });
  await writePrivateFile(paths.caKey, ca.privateKeyPem);
  await writePublicFile(paths.caCertificate, ca.certificatePem);
  return ca;
}

async function writeServerPair(
  paths: DevelopmentPkiPaths,
  ca: CertificateAuthority,
): Promise<void> {
  const server = await issueServerCertificate(ca, {
    names: DEVELOPMENT_SERVER_NAMES,
    validDays: SERVER_VALID_DAYS,
  });
  await writePrivateFile(paths.serverKey, server.privateKeyPem);
  await writePublicFile(paths.serverCertificate, server.certificatePem);
}

async function readCertificateAuthority(paths: DevelopmentPkiPaths): Promise<CertificateAuthority> {
  const [certificatePem, privateKeyPem] = await Promise.all([
    readFile(paths.caCertificate, 'utf8'),
    readFile(paths.caKey, 'utf8'),
  ]);
  return { certificatePem, privateKeyPem };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

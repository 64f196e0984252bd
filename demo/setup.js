'use strict';
/**
 * Prepares a demo deployment before the service starts (the embedded database is held by one
 * process at a time): its own PKI, users created through the CLI, and a certificate bound to
 * each user.
 */
const { X509Certificate } = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { distModule, openServiceDatabase, runCli } = require('./support/service');

const VALID_DAYS = 2;
const ADMIN_USERNAME = 'demo-admin';

/**
 * A CA and server certificate under DATA_DIR/pki (where `gatehouse certs issue` finds the CA),
 * plus the attacker's material: a certificate from our CA that nobody bound, and one from a CA of
 * his own that copies our CA's name.
 */
async function createPki(dataDir) {
  const pki = distModule('src/pki/index.js');
  const directory = path.join(dataDir, 'pki');
  await pki.ensurePrivateDirectory(dataDir);
  await pki.ensurePrivateDirectory(directory);
  const ca = await pki.createCertificateAuthority({
    commonName: 'Gatehouse Demo CA',
    validDays: VALID_DAYS,
  });
  const server = await pki.issueServerCertificate(ca, {
    names: ['localhost', '127.0.0.1', '::1'],
    validDays: VALID_DAYS,
  });
  const files = {
    caCertificate: path.join(directory, 'ca.crt'),
    caKey: path.join(directory, 'ca.key'),
    serverCertificate: path.join(directory, 'server.crt'),
    serverKey: path.join(directory, 'server.key'),
  };
  await pki.writePublicFile(files.caCertificate, ca.certificatePem);
  await pki.writePrivateFile(files.caKey, ca.privateKeyPem);
  await pki.writePublicFile(files.serverCertificate, server.certificatePem);
  await pki.writePrivateFile(files.serverKey, server.privateKeyPem);

  const forgedCa = await pki.createCertificateAuthority({
    commonName: 'Gatehouse Demo CA',
    validDays: VALID_DAYS,
  });
  const attacker = {
    unbound: await pki.issueClientCertificate(ca, { commonName: 'mallory', validDays: 1 }),
    foreign: await pki.issueClientCertificate(forgedCa, { commonName: 'user001', validDays: 1 }),
  };
  return { ca, files, attacker };
}

/** The service environment for one mode (`direct` with our PKI, or `off`). */
function serviceEnvironment(pki, mode) {
  if (mode === 'off') {
    return { MTLS_MODE: 'off' };
  }
  return {
    MTLS_MODE: 'direct',
    TLS_CERT_FILE: pki.files.serverCertificate,
    TLS_KEY_FILE: pki.files.serverKey,
    TLS_CA_FILE: pki.files.caCertificate,
  };
}

/**
 * Creates the users with `gatehouse users import`, an admin with `users add --admin` and
 * `certs issue`, then issues each user a certificate and binds it through the same service the
 * CLI's `certs bind` uses, in one process (a CLI start per user would take a second each).
 */
async function createPopulation({ env, workDir, pki, users, adminPassword, bindCertificates }) {
  const usersFile = path.join(workDir, 'users.txt');
  fs.writeFileSync(
    usersFile,
    users.map((user) => `${user.username}:${user.password}`).join('\n') + '\n',
    { mode: 0o600 },
  );
  await runCli(['users', 'import', usersFile], env);
  fs.rmSync(usersFile);
  await runCli(['users', 'add', ADMIN_USERNAME, '--admin', '--password-stdin'], env, adminPassword);
  const adminDir = path.join(workDir, 'admin');
  await runCli(['certs', 'issue', ADMIN_USERNAME, '--out', adminDir], env);
  const admin = {
    username: ADMIN_USERNAME,
    password: adminPassword,
    certificatePem: fs.readFileSync(path.join(adminDir, `${ADMIN_USERNAME}.crt`), 'utf8'),
    privateKeyPem: fs.readFileSync(path.join(adminDir, `${ADMIN_USERNAME}.key`), 'utf8'),
  };
  if (bindCertificates) {
    await issueAndBind(env, pki, users);
  }
  return admin;
}

async function issueAndBind(env, pki, users) {
  const { issueClientCertificate } = distModule('src/pki/index.js');
  const { describeCertificate } = distModule('src/mtls/certificate-verifier.js');
  const { CertificateBindingsService } = distModule('src/mtls/certificate-bindings.service.js');
  for (const user of users) {
    Object.assign(
      user,
      await issueClientCertificate(pki.ca, { commonName: user.username, validDays: 1 }),
    );
  }
  const database = await openServiceDatabase(env);
  try {
    const bindings = new CertificateBindingsService(database.dataSource);
    const rows = await database.query('SELECT id, normalized_username FROM users');
    const idOf = new Map(rows.map((row) => [row.normalized_username, row.id]));
    for (const user of users) {
      const certificate = describeCertificate(new X509Certificate(user.certificatePem));
      await bindings.bind(idOf.get(user.username), certificate, false);
    }
  } finally {
    await database.close();
  }
}

/**
 * Source addresses: legitimate users in 127.10.0.0/16, the attacker in 127.20.0.0/16. Linux
 * routes all of 127.0.0.0/8 to the loopback interface; elsewhere (macOS) only 127.0.0.1 exists
 * unless aliases are added, and then every client shares 127.0.0.1.
 */
function sourceAddress(block, index) {
  return `127.${block}.${Math.floor(index / 250)}.${(index % 250) + 1}`;
}

function canBind(address) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(0, address, () => server.close(() => resolve(true)));
  });
}

module.exports = {
  ADMIN_USERNAME,
  canBind,
  createPki,
  createPopulation,
  serviceEnvironment,
  sourceAddress,
};

/** CA, certificate issuing and key-file helpers for the CLI, the development start and tests. */
export { createCertificateAuthority } from './certificate-authority';
export { issueServerCertificate } from './server-certificate';
export { issueClientCertificate } from './client-certificate';
export { exportPkcs12 } from './pkcs12';
export { ensurePrivateDirectory, writePrivateFile, writePublicFile } from './private-file';
export * from './pki.types';

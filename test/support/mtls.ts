import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { Client } from 'pg';
import { CertificateWithKey } from '../../src/pki/pki';
import { normalizeUsername } from '../../src/users/username';

/** What a TLS client presents: the CA it trusts and, optionally, its own certificate. */
export interface TlsClientIdentity {
  ca: string;
  certificate?: CertificateWithKey;
}

export interface TlsRequest {
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  identity: TlsClientIdentity;
}

export interface TlsResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json(): Record<string, unknown>;
}

function toResponse(status: number, headers: http.IncomingHttpHeaders, body: string): TlsResponse {
  return { status, headers, body, json: () => JSON.parse(body) as Record<string, unknown> };
}

/** One request on a fresh TLS connection, so each request makes its own handshake. */
export function tlsRequest(baseUrl: string, request: TlsRequest): Promise<TlsResponse> {
  const url = new URL(request.path, baseUrl);
  const headers: Record<string, string> = { ...request.headers };
  if (request.body !== undefined) {
    headers['content-length'] = String(Buffer.byteLength(request.body));
  }
  return new Promise((resolve, reject) => {
    const outgoing = https.request(
      url,
      {
        method: request.method ?? 'GET',
        headers,
        agent: false,
        ca: request.identity.ca,
        cert: request.identity.certificate?.certificatePem,
        key: request.identity.certificate?.privateKeyPem,
      },
      (incoming) => {
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.on('error', reject);
        incoming.on('end', () =>
          resolve(
            toResponse(
              incoming.statusCode ?? 0,
              incoming.headers,
              Buffer.concat(chunks).toString('utf8'),
            ),
          ),
        );
      },
    );
    outgoing.setTimeout(30_000, () => outgoing.destroy(new Error('request timed out')));
    outgoing.on('error', reject);
    outgoing.end(request.body);
  });
}

/** A JSON password login over TLS. */
export function tlsLogin(
  baseUrl: string,
  identity: TlsClientIdentity,
  credentials: { username: string; password: string },
  headers: Record<string, string> = {},
): Promise<TlsResponse> {
  return tlsRequest(baseUrl, {
    path: '/auth/login',
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(credentials),
    identity,
  });
}

export interface CurlResult {
  status: number;
  body: string;
}

const STATUS_MARKER = '\n--status:';

/** Runs curl with `args` (never through a shell) and reads the status it reports last. */
export function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      [
        '--silent',
        '--show-error',
        '--max-time',
        '30',
        '--write-out',
        `${STATUS_MARKER}%{http_code}`,
        ...args,
      ],
      { encoding: 'utf8' },
      (error, stdout, stderr) => {
        const marker = stdout.lastIndexOf(STATUS_MARKER);
        if (marker === -1) {
          reject(new Error(`curl failed: ${error?.message ?? ''}\n${stderr}`));
          return;
        }
        resolve({
          status: Number(stdout.slice(marker + STATUS_MARKER.length)),
          body: stdout.slice(0, marker),
        });
      },
    );
  });
}

/** Writes a certificate and its key as PEM files in `directory`; returns their paths. */
export function writeIdentityFiles(
  directory: string,
  name: string,
  identity: CertificateWithKey,
): { certificatePath: string; keyPath: string } {
  const certificatePath = path.join(directory, `${name}.crt`);
  const keyPath = path.join(directory, `${name}.key`);
  fs.writeFileSync(certificatePath, identity.certificatePem);
  fs.writeFileSync(keyPath, identity.privateKeyPem, { mode: 0o600 });
  return { certificatePath, keyPath };
}

/** Something that runs SQL: a pg Client, or a TypeORM DataSource. */
export interface SqlRunner {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

export interface BindingOptions {
  certificateLogin?: boolean;
  revoked?: boolean;
}

/** Binds a certificate to a user the way `gatehouse certs bind` stores it. */
export async function bindCertificate(
  sql: SqlRunner,
  username: string,
  certificatePem: string,
  options: BindingOptions = {},
): Promise<void> {
  const certificate = new X509Certificate(certificatePem);
  await sql.query(
    `INSERT INTO certificate_bindings
       (user_id, fingerprint, subject, issuer, serial_number, not_before, not_after,
        certificate_login, revoked_at)
     SELECT id, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN now() END
     FROM users WHERE normalized_username = $1`,
    [
      normalizeUsername(username),
      fingerprintOfPem(certificatePem),
      certificate.subject.split('\n').join(', '),
      certificate.issuer.split('\n').join(', '),
      certificate.serialNumber.toLowerCase(),
      new Date(certificate.validFrom),
      new Date(certificate.validTo),
      options.certificateLogin ?? false,
      options.revoked ?? false,
    ],
  );
}

export function fingerprintOfPem(certificatePem: string): string {
  return new X509Certificate(certificatePem).fingerprint256.replace(/:/g, '').toLowerCase();
}

export interface RecordedAttempt {
  outcome: string;
  method: string;
  count: number;
  client_ip: string | null;
  forwarded_for: string | null;
  cert_fingerprint: string | null;
  username: string | null;
}

/** Which attempt to read: refusals carry their request id, successes are found by user agent. */
export type AttemptKey = { requestId: string } | { userAgent: string };

/** Reads the attempt of `key`, waiting up to `timeoutMs` for the audit writer to store it. */
export async function findAttempt(
  sql: SqlRunner,
  key: AttemptKey,
  timeoutMs = 10_000,
): Promise<RecordedAttempt> {
  const [column, value] =
    'requestId' in key ? ['request_id', key.requestId] : ['user_agent', key.userAgent];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const result = (await sql.query(
      `SELECT outcome, method, count, host(client_ip) AS client_ip, forwarded_for,
              trim(cert_fingerprint) AS cert_fingerprint, username
       FROM login_attempts WHERE ${column} = $1`,
      [value],
    )) as RecordedAttempt[] | { rows: RecordedAttempt[] };
    const rows = Array.isArray(result) ? result : result.rows;
    if (rows.length > 0) {
      return rows[0];
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no login attempt recorded with ${column} ${value}`);
}

/** Waits for the audit writer to store the attempt of `key` on the server database. */
export async function recordedAttempt(
  databaseUrl: string,
  key: AttemptKey,
): Promise<RecordedAttempt> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await findAttempt(client, key);
  } finally {
    await client.end();
  }
}

/** The request id an error answer carries, as the key of its recorded attempt. */
export function requestIdOf(response: { headers: http.IncomingHttpHeaders }): AttemptKey {
  const id = response.headers['x-request-id'];
  if (typeof id !== 'string') {
    throw new Error('the response carries no x-request-id');
  }
  return { requestId: id };
}

let userAgents = 0;

/** A user agent no other request of this run sends, to find a successful attempt by. */
export function uniqueUserAgent(): string {
  userAgents += 1;
  return `gatehouse-e2e/${process.pid}-${Date.now()}-${userAgents}`;
}

/**
 * Limits far above what one spec sends, so that the refusals a spec provokes on purpose from
 * 127.0.0.1 are answered by the certificate checks under test, not by throttling or detection.
 */
export const RELAXED_LIMITS: Record<string, string> = {
  IP_LOGIN_LIMIT: '100000',
  IP_USER_LIMIT: '100000',
  CERT_LOGIN_LIMIT: '100000',
  IP_FAILURE_BUDGET: '100000',
  LOGIN_MAX_FAILURES: '1000',
  DETECT_CREDENTIAL_STUFFING: 'off',
  DETECT_DISTRIBUTED_BRUTE_FORCE: 'off',
};

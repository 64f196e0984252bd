/** Request headers as Node and Fastify expose them: lower-case names, repeated lines as arrays. */
export type ForwardedHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * What a trusted proxy said about the client certificate. Only `certificate` carries an identity,
 * and even that must still be verified against the CA bundle before it means anything.
 */
export type ForwardedCertificate =
  | { kind: 'none' }
  | { kind: 'failed'; detail: string }
  | { kind: 'certificate'; der: Buffer; chain: Buffer[] }
  | { kind: 'hash_mismatch'; detail: string }
  | { kind: 'malformed'; detail: string };

export function malformed(detail: string): ForwardedCertificate {
  return { kind: 'malformed', detail };
}

/**
 * Reads a header that must appear at most once. A repeated identity header means someone besides
 * the proxy wrote one of the copies, so it is reported rather than resolved by picking one.
 */
export function singleHeader(
  headers: ForwardedHeaders,
  name: string,
): { ok: true; value: string | undefined } | { ok: false; detail: string } {
  const value = headers[name];
  if (Array.isArray(value)) {
    return value.length > 1
      ? { ok: false, detail: `${name} appears ${value.length} times` }
      : { ok: true, value: value[0] };
  }
  return { ok: true, value };
}

import * as http from 'node:http';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  elapsedMs: number;
}

export interface RawRequest {
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  agent?: http.Agent;
  timeoutMs?: number;
  /** Sends the body with chunked transfer encoding instead of a Content-Length. */
  chunked?: boolean;
  /** Source address to send from, such as `127.0.0.2`, for per-address limits. */
  localAddress?: string;
}

/** An agent that keeps connections alive and opens at most `sockets` of them. */
export function boundedAgent(sockets: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
}

/** Sends one request with exactly the bytes given and reads the whole answer. */
export function sendRaw(baseUrl: string, request: RawRequest): Promise<RawResponse> {
  const url = new URL(request.path ?? '/auth/login', baseUrl);
  const body = request.body === undefined ? undefined : Buffer.from(request.body);
  const headers: Record<string, string> = { ...request.headers };
  if (body !== undefined && !request.chunked) {
    headers['content-length'] = String(body.length);
  }
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const outgoing = http.request(
      url,
      {
        method: request.method ?? 'POST',
        headers,
        agent: request.agent,
        localAddress: request.localAddress,
      },
      (incoming) => {
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.on('error', reject);
        incoming.on('end', () =>
          resolve({
            status: incoming.statusCode ?? 0,
            headers: incoming.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            elapsedMs: Number(process.hrtime.bigint() - started) / 1e6,
          }),
        );
      },
    );
    outgoing.setTimeout(request.timeoutMs ?? 30_000, () =>
      outgoing.destroy(new Error('request timed out')),
    );
    outgoing.on('error', reject);
    if (request.chunked && body !== undefined) {
      outgoing.setHeader('transfer-encoding', 'chunked');
      for (let offset = 0; offset < body.length; offset += 64 * 1024) {
        outgoing.write(body.subarray(offset, offset + 64 * 1024));
      }
      outgoing.end();
    } else {
      outgoing.end(body);
    }
  });
}

/** A JSON login, the common case. */
export function postLogin(
  baseUrl: string,
  credentials: unknown,
  agent?: http.Agent,
): Promise<RawResponse> {
  return sendRaw(baseUrl, {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(credentials),
    agent,
  });
}

'use strict';
/**
 * HTTP(S) clients for the demo and the benchmarks: one keep-alive agent per identity (client
 * certificate and source address), and a login call that never throws.
 */
const http = require('node:http');
const https = require('node:https');

const REQUEST_TIMEOUT_MS = 15_000;

/**
 * A keep-alive agent for one client. `identity` holds `certificatePem`/`privateKeyPem` (omit for
 * no certificate), `localAddress` (a loopback address on Linux) and `caPem` (trusts the server).
 */
function createAgent(baseUrl, identity = {}) {
  const options = { keepAlive: true, maxSockets: identity.maxSockets ?? 4 };
  if (identity.localAddress) {
    options.localAddress = identity.localAddress;
  }
  if (new URL(baseUrl).protocol === 'http:') {
    return new http.Agent(options);
  }
  return new https.Agent({
    ...options,
    ca: identity.caPem,
    cert: identity.certificatePem,
    key: identity.privateKeyPem,
    servername: 'localhost',
    // Each client keeps its own session cache, like separate machines would.
    maxCachedSessions: identity.maxCachedSessions ?? 100,
  });
}

/** One request; resolves with status, parsed body (JSON when it is) and latency in ms. */
function request(baseUrl, agent, { method = 'GET', path, body, headers = {} }) {
  const url = new URL(path, baseUrl);
  const transport = url.protocol === 'http:' ? http : https;
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const outgoing = transport.request(
      url,
      {
        method,
        agent,
        headers: {
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': payload.length }
            : {}),
          ...headers,
        },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({
            status: response.statusCode,
            body: parsed,
            error: parsed?.error,
            ms: Number(process.hrtime.bigint() - started) / 1e6,
          });
        });
        response.on('error', () => resolve({ status: 0, error: 'response_error', ms: 0 }));
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error('timeout')));
    outgoing.on('error', (error) =>
      resolve({ status: 0, error: error.code ?? error.message, ms: 0 }),
    );
    outgoing.end(payload);
  });
}

function login(baseUrl, agent, username, password) {
  return request(baseUrl, agent, {
    method: 'POST',
    path: '/auth/login',
    body: { username, password },
  });
}

/** How the demo labels an answer: `200`, `401 invalid_credentials`, `error ECONNRESET`. */
function answerLabel(answer) {
  if (answer.status === 0) {
    return `error ${answer.error}`;
  }
  return answer.error ? `${answer.status} ${answer.error}` : String(answer.status);
}

/** Runs `work(index)` for index 0..count-1, at most `concurrency` at a time. */
async function runPool(count, concurrency, work) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next;
      next += 1;
      await work(index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
}

module.exports = { answerLabel, createAgent, login, request, runPool };

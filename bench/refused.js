'use strict';
/**
 * Refused attempts per second over keep-alive TLS: a flood from one address that is past
 * IP_LOGIN_LIMIT (answered 429 throttled, audited, folded beyond AUDIT_FOLD_RATE), and malformed
 * bodies (400 invalid_request, audited), against a bare Fastify HTTPS endpoint that refuses at
 * once and records nothing.
 */
const { spawn } = require('node:child_process');
const path = require('node:path');
const { createAgent, request } = require('../demo/support/client');
const { closedLoop } = require('./load');
const { inRounds } = require('./rounds');

const CONCURRENCY = 32;

function startBareServer(files) {
  const child = spawn(
    process.execPath,
    [
      path.join(__dirname, 'bare-server.js'),
      files.serverCertificate,
      files.serverKey,
      files.caCertificate,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    child.stdout.once('data', (chunk) => {
      const { port } = JSON.parse(chunk.toString('utf8'));
      resolve({ url: `https://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') });
    });
    child.once('exit', (code) => reject(new Error(`bare server exited with ${code}`)));
  });
}

/** `body(n)` gives the n-th request's body. */
function flood(url, address, caPem, body, durationMs) {
  const agent = createAgent(url, { caPem, localAddress: address, maxSockets: CONCURRENCY });
  let sent = 0;
  return closedLoop({
    concurrency: CONCURRENCY,
    durationMs,
    send: () => request(url, agent, { method: 'POST', path: '/auth/login', body: body(sent++) }),
  }).finally(() => agent.destroy());
}

/**
 * `service` is running with default per-address limits. Addresses 127.30.0.x are used once each,
 * so the flood starts from a fresh budget and is throttled after its first IP_LOGIN_LIMIT.
 */
async function benchRefused({ service, pki, durationMs, rounds, multipleSources }) {
  const caPem = pki.ca.certificatePem;
  const address = multipleSources ? '127.30.0.1' : undefined;
  const malformedAddress = multipleSources ? '127.30.0.2' : undefined;
  // A new name each time: one name would lock its account, and locked answers (401) do not
  // count against the address's limits, so the flood would never be throttled.
  const wrong = (index) => ({ username: `nobody-${index}`, password: 'not-the-password' });
  const malformed = () => ({ username: 42 });
  // Use up the address's budget until it is throttled; this part is not measured.
  let warmUp = 0;
  for (; warmUp < 60; warmUp += 1) {
    const answers = await flood(service.url, address, caPem, wrong, 1000);
    if ((answers.by_status['429 too_many_attempts'] ?? 0) > answers.requests / 2) {
      break;
    }
  }

  const bare = await startBareServer(pki.files);
  try {
    const { combined, ratio } = await inRounds(rounds, {
      gatehouse_throttled: () => flood(service.url, address, caPem, wrong, durationMs),
      gatehouse_invalid_request: () =>
        flood(service.url, malformedAddress, caPem, malformed, durationMs),
      bare_fastify: () => flood(bare.url, address, caPem, wrong, durationMs),
    });
    return {
      concurrency: CONCURRENCY,
      rounds,
      warm_up_seconds: warmUp + 1,
      ...combined,
      ratio_throttled: ratio('gatehouse_throttled', 'bare_fastify'),
      ratio_invalid_request: ratio('gatehouse_invalid_request', 'bare_fastify'),
    };
  } finally {
    bare.stop();
  }
}

module.exports = { benchRefused };

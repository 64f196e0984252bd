'use strict';
/**
 * The baseline of the refusal benchmark: a bare Fastify HTTPS endpoint with the same TLS settings
 * as Gatehouse's listener (client certificates requested, not required) that refuses every login
 * at once and does nothing else. Prints `{"port":N}` on stdout once listening.
 *
 *   node bench/bare-server.js <cert-file> <key-file> <ca-file>
 */
const fs = require('node:fs');
const fastify = require('fastify');

async function main() {
  const [certFile, keyFile, caFile] = process.argv.slice(2);
  const app = fastify({
    logger: false,
    https: {
      cert: fs.readFileSync(certFile),
      key: fs.readFileSync(keyFile),
      ca: fs.readFileSync(caFile),
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
  });
  app.post('/auth/login', async (_request, reply) => {
    reply.code(429).type('application/problem+json');
    return {
      type: 'about:blank',
      title: 'Too many attempts',
      status: 429,
      error: 'too_many_attempts',
    };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  process.stdout.write(`${JSON.stringify({ port: app.server.address().port })}\n`);
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

main().catch((error) => {
  process.stderr.write(`bare-server: ${error.message}\n`);
  process.exit(1);
});

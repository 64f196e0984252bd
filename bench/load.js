'use strict';
/** Closed-loop load: `concurrency` callers, each sending its next request when the last ends. */
const tls = require('node:tls');

function percentile(sorted, share) {
  return sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))];
}

/** Throughput counts answers only; transport errors (status 0) are reported apart. */
function summarise(latencies, count, seconds, byStatus) {
  const sorted = [...latencies].sort((a, b) => a - b);
  let errors = 0;
  for (const [label, times] of byStatus) {
    if (label.startsWith('0 ')) {
      errors += times;
    }
  }
  return {
    requests: count,
    errors,
    seconds: Number(seconds.toFixed(3)),
    per_second: Number(((count - errors) / seconds).toFixed(1)),
    p50_ms: Number(percentile(sorted, 0.5).toFixed(2)),
    p99_ms: Number(percentile(sorted, 0.99).toFixed(2)),
    by_status: Object.fromEntries(byStatus),
  };
}

/**
 * Calls `send(callerIndex)` (a promise of an answer with `status` and `ms`) from `concurrency`
 * callers for `durationMs`, or until `stop.requested`. Returns throughput and latency.
 */
async function closedLoop({ concurrency, durationMs, send, stop = {} }) {
  const latencies = [];
  const byStatus = new Map();
  let count = 0;
  const started = process.hrtime.bigint();
  const deadline = Date.now() + durationMs;
  const caller = async (index) => {
    while (Date.now() < deadline && !stop.requested) {
      const answer = await send(index);
      count += 1;
      if (answer.status !== 0) {
        latencies.push(answer.ms);
      }
      const label = answer.error ? `${answer.status} ${answer.error}` : String(answer.status);
      byStatus.set(label, (byStatus.get(label) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, index) => caller(index)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return summarise(latencies, count, seconds, byStatus);
}

/** One full TLS handshake with a client certificate (no session resumption), then close. */
function handshake({ port, caPem, certificatePem, privateKeyPem }) {
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: caPem,
      cert: certificatePem,
      key: privateKeyPem,
      // TLS 1.3 sends the server's verdict on the client certificate after the handshake; a
      // handshake either way is what both servers do.
      rejectUnauthorized: true,
    });
    const finish = (status, error) => {
      socket.destroy();
      resolve({ status, error, ms: Number(process.hrtime.bigint() - started) / 1e6 });
    };
    socket.once('secureConnect', () => finish(200));
    socket.once('error', (error) => finish(0, error.code ?? 'error'));
    socket.setTimeout(10_000, () => finish(0, 'timeout'));
  });
}

module.exports = { closedLoop, handshake, percentile, summarise };

import Fastify, { FastifyInstance } from 'fastify';
import { MetricsService } from './metrics.service';

/** This replica's own state: readiness never depends on shared Redis or Postgres. */
export interface ReplicaState {
  started: boolean;
  draining: boolean;
  auditWriterHealthy(): boolean;
}

/**
 * The management port: plain HTTP, health and metrics only. When Redis or Postgres is down every
 * replica stays ready, so the load balancer still routes to them and the audited 503s reach
 * clients instead of connection errors.
 */
export function createManagementServer(
  state: ReplicaState,
  metrics: MetricsService,
): FastifyInstance {
  const server = Fastify({ logger: false, bodyLimit: 1024 });
  server.get('/health/live', async () => ({ status: 'live' }));
  server.get('/health/started', async (_request, reply) =>
    reply
      .status(state.started ? 200 : 503)
      .send({ status: state.started ? 'started' : 'starting' }),
  );
  server.get('/health/ready', async (_request, reply) => {
    const ready = state.started && !state.draining && state.auditWriterHealthy();
    const status = !state.started
      ? 'starting'
      : state.draining
        ? 'draining'
        : ready
          ? 'ready'
          : 'audit_unhealthy';
    return reply.status(ready ? 200 : 503).send({ status });
  });
  server.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  return server;
}

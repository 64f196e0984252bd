import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The metrics CONTRACT.md names. Labels are bounded vocabularies only: never a username or an
 * address, which would let an attacker grow the series without limit.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly loginAttempts = new Counter({
    name: 'gatehouse_login_attempts_total',
    help: 'Login attempts by method and recorded outcome.',
    labelNames: ['method', 'outcome'],
    registers: [this.registry],
  });

  readonly hashDuration = new Histogram({
    name: 'gatehouse_password_hash_duration_seconds',
    help: 'Time spent verifying one password hash.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly hashQueueDepth = new Gauge({
    name: 'gatehouse_hash_queue_depth',
    help: 'Password checks waiting for a hash slot.',
    registers: [this.registry],
  });

  readonly auditBacklog = new Gauge({
    name: 'gatehouse_audit_backlog_rows',
    help: 'Attempt rows accepted and not yet written.',
    registers: [this.registry],
  });

  readonly auditFlushDuration = new Histogram({
    name: 'gatehouse_audit_flush_duration_seconds',
    help: 'Time to write one batch of attempt rows.',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });

  readonly limiterDecisions = new Counter({
    name: 'gatehouse_limiter_decisions_total',
    help: 'Limiter decisions by limit and result.',
    labelNames: ['limit', 'result'],
    registers: [this.registry],
  });

  readonly findings = new Counter({
    name: 'gatehouse_findings_total',
    help: 'Detection findings raised, by rule and mode.',
    labelNames: ['rule', 'mode'],
    registers: [this.registry],
  });

  readonly detectionLeader = new Gauge({
    name: 'gatehouse_detection_leader',
    help: '1 when this replica runs the detection evaluator.',
    registers: [this.registry],
  });

  readonly dominantFailureSource = new Gauge({
    name: 'gatehouse_dominant_failure_source_ratio',
    help: 'Share of recent failures that come from the single busiest source.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'gatehouse_' });
  }
}

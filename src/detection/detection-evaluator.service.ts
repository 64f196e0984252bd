import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { MetricsService } from '../health/metrics.service';
import { CertificateBindingsService } from '../mtls/certificate-bindings.service';
import { LoginLimiterService } from '../throttling/login-limiter.service';
import { AdvisoryLeadership } from './advisory-leadership';
import { SQL_RULES, dominantFailureSourceRatio } from './detection-rules';
import { FINDING_RAISED_EVENT, Finding, FindingCandidate } from './finding';
import { printable } from './finding-source';
import { FindingsStore } from './findings.store';
import { PasswordSprayTracker } from './password-spray-tracker';

/** Advisory lock key of the detection leader ("gdet"); distinct from the migration lock. */
export const DETECTION_LOCK_KEY = 0x6764_6574;

/** Below this many wrong guesses in the window, no source is said to dominate them. */
const DOMINANCE_MIN_FAILURES = 20;

/** What the evaluator needs of the limiter: blocking a source. */
export type SourceBlocker = Pick<LoginLimiterService, 'block'>;

/** What the evaluator needs of the bindings: suspending a certificate's binding. */
export type CertificateSuspender = Pick<CertificateBindingsService, 'suspend'>;

/**
 * Evaluates the detection rules every DETECT_INTERVAL. One replica leads (a Postgres advisory
 * lock) and runs the SQL rules over the shared audit table; every replica evaluates password
 * spraying over its own in-memory guesses. Findings are upserted on an incident key, so replicas
 * and repeated runs meet on one row; a new one is logged, counted and published as
 * `gatehouse.finding.raised`. In enforce mode a source subject is blocked through the limiter
 * and a certificate subject has its binding suspended; a username subject is only reported, since
 * blocking an account would hand attackers a way to lock its owner out.
 */
@Injectable()
export class DetectionEvaluatorService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(DetectionEvaluatorService.name);
  private readonly leadership: AdvisoryLeadership;
  private readonly findings: FindingsStore;
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private stopped = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(LoginLimiterService) private readonly blocker: SourceBlocker,
    private readonly events: EventEmitter2,
    private readonly metrics: MetricsService,
    private readonly sprayTracker: PasswordSprayTracker,
    @Inject(CertificateBindingsService) private readonly bindings: CertificateSuspender,
  ) {
    const embedded = config.databaseUrl === undefined;
    this.leadership = new AdvisoryLeadership(dataSource, embedded, DETECTION_LOCK_KEY, this.logger);
    this.findings = new FindingsStore(dataSource);
  }

  get isLeader(): boolean {
    return this.leadership.isLeader;
  }

  onApplicationBootstrap(): void {
    this.schedule(0);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
    await this.leadership.resign();
    this.metrics.detectionLeader.set(0);
  }

  /** One evaluation now (the timer calls this too). Returns the findings it created. */
  async evaluateNow(nowMs = Date.now()): Promise<Finding[]> {
    const leader = await this.leadership.refresh();
    this.metrics.detectionLeader.set(leader ? 1 : 0);
    const since = new Date(nowMs - this.config.detectionThresholds.windowMs);
    const candidates: FindingCandidate[] = [];
    if (leader) {
      candidates.push(...(await this.evaluateSqlRules(since)));
      this.metrics.dominantFailureSource.set(
        await dominantFailureSourceRatio(this.query, since, DOMINANCE_MIN_FAILURES),
      );
    } else {
      this.metrics.dominantFailureSource.set(0);
    }
    if (this.config.detection.password_spraying !== 'off') {
      candidates.push(...this.sprayTracker.evaluate(nowMs));
    }
    const created: Finding[] = [];
    for (const candidate of candidates) {
      const finding = await this.raise(candidate);
      if (finding) {
        created.push(finding);
      }
    }
    return created;
  }

  private readonly query = (sql: string, parameters: unknown[]) =>
    this.dataSource.query(sql, parameters) as Promise<unknown[]>;

  private async evaluateSqlRules(since: Date): Promise<FindingCandidate[]> {
    const candidates: FindingCandidate[] = [];
    for (const rule of SQL_RULES) {
      if (this.config.detection[rule.rule] !== 'off') {
        candidates.push(
          ...(await rule.evaluate(this.query, since, this.config.detectionThresholds)),
        );
      }
    }
    return candidates;
  }

  private async raise(candidate: FindingCandidate): Promise<Finding | undefined> {
    const mode = this.config.detection[candidate.rule];
    const { finding, created } = await this.findings.upsert(
      candidate,
      mode,
      this.config.detectionThresholds.windowMs,
    );
    if (mode === 'enforce') {
      await this.enforce(candidate);
    }
    if (!created) {
      return undefined;
    }
    this.metrics.findings.inc({ rule: finding.rule, mode });
    this.logger.warn(
      {
        findingId: finding.id,
        rule: finding.rule,
        mode,
        subject: printable(finding.subject),
        evidence: candidate.evidence,
        enforced: mode === 'enforce' && candidate.subjectKind !== 'username',
      },
      'detection finding raised',
    );
    this.events.emit(FINDING_RAISED_EVENT, finding);
    return finding;
  }

  /**
   * Blocks a source (renewed on every evaluation that still sees the incident, so the block
   * outlasts it) or suspends a certificate's binding until an operator restores it.
   */
  private async enforce(candidate: FindingCandidate): Promise<void> {
    try {
      if (candidate.subjectKind === 'source') {
        await this.blocker.block(candidate.subject, this.config.detectionBlockMs);
      } else if (candidate.subjectKind === 'fingerprint') {
        await this.bindings.suspend(candidate.subject);
      }
    } catch (error) {
      this.logger.error(
        { err: (error as Error).message, subject: printable(candidate.subject) },
        'detection could not enforce a finding',
      );
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) {
      return;
    }
    this.timer = setTimeout(() => {
      this.running = this.evaluateNow()
        .catch((error: Error) => {
          this.logger.error({ err: error.message }, 'detection evaluation failed');
        })
        .finally(() => this.schedule(this.config.detectionIntervalMs));
    }, delayMs);
    this.timer.unref();
  }
}

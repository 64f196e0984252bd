import { DynamicModule, Inject, Injectable, Logger, Module } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { FINDING_RAISED_EVENT, Finding } from '../../src/detection/finding';

/** Where findings go, and how long one delivery may take. */
export interface WebhookAlertsOptions {
  /** The receiver, e.g. a chat or paging integration. Only this URL is ever called. */
  url: string;
  /** Extra request headers, such as a shared secret the receiver checks. */
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export const WEBHOOK_ALERTS_OPTIONS = Symbol('WEBHOOK_ALERTS_OPTIONS');

/**
 * Posts every raised finding as JSON to the configured URL. Delivery is best effort: a slow or
 * failing receiver is logged and never holds up detection (the findings table stays the record).
 */
@Injectable()
export class WebhookAlertsService {
  private readonly logger = new Logger(WebhookAlertsService.name);

  constructor(@Inject(WEBHOOK_ALERTS_OPTIONS) private readonly options: WebhookAlertsOptions) {}

  @OnEvent(FINDING_RAISED_EVENT, { async: true, promisify: true })
  async deliver(finding: Finding): Promise<boolean> {
    try {
      const response = await fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.options.headers },
        body: JSON.stringify(finding),
        redirect: 'error',
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
      });
      await response.body?.cancel();
      if (!response.ok) {
        this.logger.warn({ status: response.status, findingId: finding.id }, 'webhook refused');
      }
      return response.ok;
    } catch (error) {
      this.logger.warn({ err: (error as Error).message, findingId: finding.id }, 'webhook failed');
      return false;
    }
  }
}

/**
 * An example extension: pass `WebhookAlertsModule.forRoot({ url })` in `startService`'s
 * `imports` and each finding is also sent to that URL.
 */
@Module({})
export class WebhookAlertsModule {
  static forRoot(options: WebhookAlertsOptions): DynamicModule {
    const url = new URL(options.url);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new Error('webhook URL must be http: or https:');
    }
    return {
      module: WebhookAlertsModule,
      providers: [{ provide: WEBHOOK_ALERTS_OPTIONS, useValue: options }, WebhookAlertsService],
      exports: [WebhookAlertsService],
    };
  }
}

import 'reflect-metadata';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import { EventEmitter2, EventEmitterModule } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import { FINDING_RAISED_EVENT, Finding } from '../../src/detection/finding';
import { WebhookAlertsModule } from './webhook-alerts.module';

interface Received {
  method?: string;
  contentType?: string;
  secret?: string;
  body: string;
}

function startReceiver(
  status: number,
): Promise<{ server: http.Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({
        method: request.method,
        contentType: request.headers['content-type'],
        secret: request.headers['x-webhook-secret'] as string | undefined,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      response.statusCode = status;
      response.end();
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}/hooks/gatehouse`, received });
    });
  });
}

const FINDING: Finding = {
  id: '0190a5e0-0000-7000-8000-000000000001',
  rule: 'credential_stuffing',
  severity: 'high',
  mode: 'enforce',
  subject: '198.51.100.7',
  first_seen: '2026-12-04T10:00:00.000Z',
  last_seen: '2026-12-04T10:05:00.000Z',
  evidence: { usernames: 25, failures: 25, successes: 0 },
  status: 'open',
};

async function emitterWith(
  url: string,
): Promise<{ events: EventEmitter2; close(): Promise<void> }> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      EventEmitterModule.forRoot(),
      WebhookAlertsModule.forRoot({
        url,
        headers: { 'x-webhook-secret': 's3cret' },
        timeoutMs: 2000,
      }),
    ],
  }).compile();
  await moduleRef.init();
  return { events: moduleRef.get(EventEmitter2), close: () => moduleRef.close() };
}

describe('WebhookAlertsModule', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('posts each raised finding as JSON to the configured URL', async () => {
    const receiver = await startReceiver(204);
    const { events, close } = await emitterWith(receiver.url);
    try {
      const results = (await events.emitAsync(FINDING_RAISED_EVENT, FINDING)) as boolean[];

      expect(results).toEqual([true]);
      expect(receiver.received).toHaveLength(1);
      expect(receiver.received[0]).toMatchObject({
        method: 'POST',
        contentType: 'application/json',
        secret: 's3cret',
      });
      expect(JSON.parse(receiver.received[0].body)).toEqual(FINDING);
    } finally {
      await close();
      receiver.server.close();
    }
  });

  it('reports a refusing receiver without throwing into detection', async () => {
    const receiver = await startReceiver(500);
    const { events, close } = await emitterWith(receiver.url);
    try {
      const results = (await events.emitAsync(FINDING_RAISED_EVENT, FINDING)) as boolean[];

      expect(results).toEqual([false]);
      expect(receiver.received).toHaveLength(1);
    } finally {
      await close();
      receiver.server.close();
    }
  });

  it('refuses a URL that is not http or https', () => {
    expect(() => WebhookAlertsModule.forRoot({ url: 'file:///etc/passwd' })).toThrow(/http/);
  });
});

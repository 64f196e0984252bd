import { randomUUID } from 'node:crypto';
import { AttemptRecord } from '../attempt-record';

/** An attempt row with plausible values; tests override what they care about. */
export function buildAttemptRecord(overrides: Partial<AttemptRecord> = {}): AttemptRecord {
  return {
    id: randomUUID(),
    occurredAt: new Date(),
    method: 'password',
    outcome: 'bad_password',
    count: 1,
    username: 'alice',
    usernameLength: 5,
    userId: null,
    clientIp: '192.0.2.10',
    forwardedFor: null,
    userAgent: 'spec',
    certFingerprint: null,
    certSubject: null,
    certIssuer: null,
    certSerial: null,
    requestId: randomUUID(),
    instanceId: 'spec-instance',
    latencyMs: 40,
    ...overrides,
  };
}

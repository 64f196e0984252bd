import { loadConfig } from '../config/config.loader';
import { FailedPasswordTagger, PASSWORD_TAG_BITS } from './failed-password-tagger';
import { PasswordSprayTracker } from './password-spray-tracker';

const HOUR_MS = 3_600_000;

function configWith(extra: Record<string, string> = {}) {
  return loadConfig({ MTLS_MODE: 'off', DETECT_PASSWORD_SPRAYING: 'monitor', ...extra });
}

describe('FailedPasswordTagger', () => {
  it('tags nothing while password spraying detection is off', () => {
    const tagger = new FailedPasswordTagger(loadConfig({ MTLS_MODE: 'off' }));

    expect(tagger.tag('Winter2026!')).toBeUndefined();
  });

  it('gives one password the same short tag within an hour', () => {
    const tagger = new FailedPasswordTagger(configWith());
    const now = 10 * HOUR_MS + 60_000;

    const first = tagger.tag('Winter2026!', now)!;
    const again = tagger.tag('Winter2026!', now + 60_000)!;

    expect(again).toEqual(first);
    expect(first.tag).toBeLessThan(2 ** PASSWORD_TAG_BITS);
  });

  it('changes its key every hour, so old tags cannot be compared with new ones', () => {
    const tagger = new FailedPasswordTagger(configWith());
    const passwords = Array.from({ length: 20 }, (_, index) => `password-${index}`);

    const before = passwords.map((password) => tagger.tag(password, 5 * HOUR_MS)!);
    const after = passwords.map((password) => tagger.tag(password, 6 * HOUR_MS)!);

    expect(after[0].epoch).toBe(before[0].epoch + 1);
    expect(after.map((tag) => tag.tag)).not.toEqual(before.map((tag) => tag.tag));
  });
});

describe('PasswordSprayTracker', () => {
  const config = configWith({ DETECT_SPRAYING_MIN_USERNAMES: '5', DETECT_WINDOW: '10m' });
  const tagger = new FailedPasswordTagger(config);

  function feed(
    tracker: PasswordSprayTracker,
    at: Date,
    password: string,
    users: number,
    ip: string,
  ) {
    for (let index = 0; index < users; index += 1) {
      tracker.record({
        occurredAt: at,
        username: `${ip}-user-${index}`,
        clientIp: ip,
        tag: tagger.tag(password, at.getTime())!,
      });
    }
  }

  it('raises one password tried on many usernames, attributed to its busiest source', () => {
    const tracker = new PasswordSprayTracker(config);
    const now = new Date();
    feed(tracker, now, 'Spring!', 4, '2001:db8:5:6::1');
    feed(tracker, now, 'Spring!', 2, '192.0.2.4');

    const [finding] = tracker.evaluate(now.getTime());

    expect(finding).toMatchObject({
      rule: 'password_spraying',
      subject: '2001:db8:5:6::/64',
      subjectKind: 'source',
      evidence: { usernames: 6, failures: 6, sources: 2 },
    });
  });

  it('stays quiet below the threshold and forgets guesses older than the window', () => {
    const tracker = new PasswordSprayTracker(config);
    const now = Date.now();
    feed(tracker, new Date(now - 11 * 60_000), 'Autumn!', 10, '192.0.2.5');
    feed(tracker, new Date(now), 'Summer!', 4, '192.0.2.6');

    expect(tracker.evaluate(now)).toEqual([]);
  });
});

describe('detection thresholds', () => {
  it('has defaults and refuses values out of range', () => {
    expect(loadConfig({ MTLS_MODE: 'off' }).detectionThresholds).toMatchObject({
      windowMs: 600_000,
      stuffingMinUsernames: 20,
      stuffingFailureRatio: 0.8,
    });
    expect(
      loadConfig({ MTLS_MODE: 'off', DETECT_STUFFING_FAILURE_RATIO: '0.95' }).detectionThresholds
        .stuffingFailureRatio,
    ).toBe(0.95);
    expect(() => loadConfig({ MTLS_MODE: 'off', DETECT_STUFFING_FAILURE_RATIO: '1.5' })).toThrow(
      /DETECT_STUFFING_FAILURE_RATIO/,
    );
    expect(() => loadConfig({ MTLS_MODE: 'off', DETECT_STUFFING_MIN_USERNAMES: '1' })).toThrow(
      /DETECT_STUFFING_MIN_USERNAMES/,
    );
  });
});

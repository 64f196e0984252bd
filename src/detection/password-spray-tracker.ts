import { Inject, Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { FAILED_PASSWORD_EVENT, FailedPasswordEvent } from './failed-password-tagger';
import { FindingCandidate } from './finding';
import { sourceOf } from './finding-source';

interface Guess {
  atMs: number;
  key: string;
  username: string;
  source: string;
}

/** Bounds memory under a flood; the oldest guesses go first. */
const MAX_GUESSES = 200_000;

/**
 * Wrong guesses of this replica in the detection window, by password tag, kept in memory only.
 * One tag tried against many distinct usernames is password spraying. Each replica sees only its
 * own share of the traffic; the finding it raises meets the others' on the same incident key.
 */
@Injectable()
export class PasswordSprayTracker {
  private guesses: Guess[] = [];

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  @OnEvent(FAILED_PASSWORD_EVENT)
  record(event: FailedPasswordEvent): void {
    this.guesses.push({
      atMs: event.occurredAt.getTime(),
      key: `${event.tag.epoch}:${event.tag.tag}`,
      username: event.username,
      source: sourceOf(event.clientIp),
    });
    if (this.guesses.length > MAX_GUESSES) {
      this.guesses.splice(0, this.guesses.length - MAX_GUESSES);
    }
  }

  /** Tags seen with at least DETECT_SPRAYING_MIN_USERNAMES usernames, by their busiest source. */
  evaluate(nowMs = Date.now()): FindingCandidate[] {
    const thresholds = this.config.detectionThresholds;
    const sinceMs = nowMs - thresholds.windowMs;
    this.guesses = this.guesses.filter((guess) => guess.atMs >= sinceMs);
    const byTag = new Map<string, Guess[]>();
    for (const guess of this.guesses) {
      const sameTag = byTag.get(guess.key);
      if (sameTag) {
        sameTag.push(guess);
      } else {
        byTag.set(guess.key, [guess]);
      }
    }
    const candidates: FindingCandidate[] = [];
    for (const guesses of byTag.values()) {
      const usernames = new Set(guesses.map((guess) => guess.username));
      if (usernames.size >= thresholds.sprayingMinUsernames) {
        candidates.push(this.candidateOf(guesses, usernames.size));
      }
    }
    return candidates;
  }

  private candidateOf(guesses: Guess[], usernames: number): FindingCandidate {
    const perSource = new Map<string, number>();
    for (const guess of guesses) {
      perSource.set(guess.source, (perSource.get(guess.source) ?? 0) + 1);
    }
    const [busiest] = [...perSource.entries()].sort((a, b) => b[1] - a[1]);
    const times = guesses.map((guess) => guess.atMs);
    return {
      rule: 'password_spraying',
      severity: 'high',
      subject: busiest[0],
      subjectKind: 'source',
      firstSeen: new Date(times.reduce((a, b) => Math.min(a, b))),
      lastSeen: new Date(times.reduce((a, b) => Math.max(a, b))),
      evidence: { usernames, failures: guesses.length, sources: perSource.size },
    };
  }
}

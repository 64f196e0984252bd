import { DetectionMode, DetectionRule } from '../config/app-config';

/** Published for every finding the evaluator raises (first seen, not on each refresh). */
export const FINDING_RAISED_EVENT = 'gatehouse.finding.raised';

export type FindingSeverity = 'medium' | 'high';
export type FindingStatus = 'open' | 'resolved';
export const FINDING_STATUSES: readonly FindingStatus[] = ['open', 'resolved'];

/** What a subject names: a source can be blocked, a username or a certificate cannot. */
export type SubjectKind = 'source' | 'username' | 'fingerprint';

/** One incident a rule sees in the current window, before it is stored. */
export interface FindingCandidate {
  rule: DetectionRule;
  severity: FindingSeverity;
  /** An address, an IPv6 prefix such as `2001:db8::/64`, a username or a fingerprint. */
  subject: string;
  subjectKind: SubjectKind;
  firstSeen: Date;
  lastSeen: Date;
  /** Counts only: never a password or any part of one. */
  evidence: Record<string, number | string>;
}

/** A stored finding, as `/audit/alerts` and the raised event show it. */
export interface Finding {
  id: string;
  rule: DetectionRule;
  severity: FindingSeverity;
  mode: DetectionMode;
  subject: string;
  first_seen: string;
  last_seen: string;
  evidence: Record<string, unknown>;
  status: FindingStatus;
}

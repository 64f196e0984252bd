import * as http from 'node:http';
import { RawRequest, RawResponse, sendRaw } from './login-requests';
import { TestUser } from './users';

export type BurstKind = 'good' | 'wrong' | 'unknown' | 'malformed';

export interface BurstRequest {
  kind: BurstKind;
  request: RawRequest;
}

/** The outcome the audit must record for an answer to a request of `kind`. */
export function expectedOutcome(kind: BurstKind, status: number): string {
  if (status === 503) {
    return 'unavailable';
  }
  if (status === 429) {
    return 'throttled';
  }
  const outcomes: Record<BurstKind, string> = {
    good: 'success',
    wrong: 'bad_password',
    unknown: 'unknown_user',
    malformed: 'invalid_request',
  };
  return outcomes[kind];
}

export function expectedStatus(kind: BurstKind): number {
  return { good: 200, wrong: 401, unknown: 401, malformed: 400 }[kind];
}

const JSON_HEADERS = { 'content-type': 'application/json' };

function malformedRequest(index: number): RawRequest {
  const variants: RawRequest[] = [
    { headers: JSON_HEADERS, body: '{"username":"burst"' },
    { headers: JSON_HEADERS, body: JSON.stringify({ username: ['burst'], password: 'x' }) },
    { headers: { 'content-type': 'text/plain' }, body: 'username=burst&password=x' },
    { headers: JSON_HEADERS, body: '' },
    {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=a&username=b&password=x',
    },
  ];
  return variants[index % variants.length];
}

/** `total` login requests of the four kinds, interleaved, against `users`. */
export function buildBurst(users: TestUser[], total: number, runId: string): BurstRequest[] {
  const kinds: BurstKind[] = ['good', 'wrong', 'unknown', 'malformed'];
  return Array.from({ length: total }, (_, index) => {
    const kind = kinds[index % kinds.length];
    const user = users[index % users.length];
    const credentials =
      kind === 'good'
        ? { username: user.username, password: user.password }
        : kind === 'wrong'
          ? { username: user.username, password: `${user.password}-wrong-${index}` }
          : { username: `nobody-${runId}-${index}`, password: 'whatever-password' };
    const request: RawRequest =
      kind === 'malformed'
        ? malformedRequest(index)
        : { headers: JSON_HEADERS, body: JSON.stringify(credentials) };
    return { kind, request };
  });
}

export interface BurstResult {
  kind: BurstKind;
  response?: RawResponse;
  error?: Error;
}

/** Sends every request at once over `agent`; `onAnswer` sees each answer as it arrives. */
export function sendBurst(
  baseUrl: string,
  burst: BurstRequest[],
  agent: http.Agent,
  onAnswer: (answered: number) => void = () => undefined,
): Promise<BurstResult[]> {
  let answered = 0;
  return Promise.all(
    burst.map(({ kind, request }) =>
      sendRaw(baseUrl, { ...request, agent }).then(
        (response) => {
          answered += 1;
          onAnswer(answered);
          return { kind, response };
        },
        (error: Error) => ({ kind, error }),
      ),
    ),
  );
}

/** Answered responses counted by the outcome each must have been recorded with. */
export function answeredOutcomes(results: BurstResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const result of results) {
    if (result.response) {
      const outcome = expectedOutcome(result.kind, result.response.status);
      counts[outcome] = (counts[outcome] ?? 0) + 1;
    }
  }
  return counts;
}

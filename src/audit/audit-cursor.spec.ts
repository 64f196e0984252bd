import { AttemptCursor, AttemptCursorCodec, InvalidCursorError } from './audit-cursor';

const POSITION: AttemptCursor = {
  bound: '2026-12-04T10:00:00.123456Z',
  occurredAt: '2026-12-04T09:59:58.000001Z',
  id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
  since: '2026-12-04T09:00:00.000000Z',
  until: null,
};
const SCOPE = '[["username","alice"]]';

function reencode(cursor: string, edit: (body: Record<string, unknown>) => void): string {
  const body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
  edit(body);
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

describe('AttemptCursorCodec', () => {
  const codec = new AttemptCursorCodec(Buffer.from('a shared secret of the replicas'));

  it('decodes the position it encoded', () => {
    const cursor = codec.encode(POSITION, SCOPE);

    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(codec.decode(cursor, SCOPE)).toEqual(POSITION);
  });

  it('is base64url of JSON naming bound, occurred_at and id', () => {
    const body = JSON.parse(Buffer.from(codec.encode(POSITION, SCOPE), 'base64url').toString());

    expect(body).toMatchObject({
      bound: POSITION.bound,
      occurred_at: POSITION.occurredAt,
      id: POSITION.id,
    });
  });

  it('is accepted by another replica with the same secret', () => {
    const other = new AttemptCursorCodec(Buffer.from('a shared secret of the replicas'));

    expect(other.decode(codec.encode(POSITION, SCOPE), SCOPE)).toEqual(POSITION);
  });

  it.each([
    [
      'an earlier position',
      (body: Record<string, unknown>) => (body.occurred_at = '2020-01-01T00:00:00.000000Z'),
    ],
    [
      'a later bound',
      (body: Record<string, unknown>) => (body.bound = '2030-01-01T00:00:00.000000Z'),
    ],
    [
      'another id',
      (body: Record<string, unknown>) => (body.id = '00000000-0000-7000-8000-000000000000'),
    ],
    ['a removed time range', (body: Record<string, unknown>) => (body.since = null)],
    ['a forged mac', (body: Record<string, unknown>) => (body.mac = 'AAAAAAAAAAAAAAAAAAAAAA')],
    ['an extra field', (body: Record<string, unknown>) => (body.extra = 1)],
    ['SQL in the id', (body: Record<string, unknown>) => (body.id = "' OR 1=1 --")],
    [
      'a timestamp without microseconds',
      (body: Record<string, unknown>) => (body.bound = '2026-12-04T10:00:00Z'),
    ],
  ])('refuses a cursor edited to %s', (_case, edit) => {
    const tampered = reencode(codec.encode(POSITION, SCOPE), edit);

    expect(() => codec.decode(tampered, SCOPE)).toThrow(InvalidCursorError);
  });

  it('refuses a cursor issued for other filters', () => {
    const cursor = codec.encode(POSITION, SCOPE);

    expect(() => codec.decode(cursor, '[["username","mallory"]]')).toThrow(InvalidCursorError);
  });

  it('refuses a cursor signed with another secret', () => {
    const foreign = new AttemptCursorCodec(Buffer.from('someone else')).encode(POSITION, SCOPE);

    expect(() => codec.decode(foreign, SCOPE)).toThrow(InvalidCursorError);
  });

  it.each([
    ['not base64url', 'abc$def'],
    ['not JSON', Buffer.from('{oops').toString('base64url')],
    ['a JSON array', Buffer.from('[1,2,3]').toString('base64url')],
    ['JSON null', Buffer.from('null').toString('base64url')],
    ['oversized', 'A'.repeat(5000)],
  ])('refuses a cursor that is %s', (_case, text) => {
    expect(() => codec.decode(text, SCOPE)).toThrow(InvalidCursorError);
  });

  it('refuses a cursor with one character changed', () => {
    const cursor = codec.encode(POSITION, SCOPE);
    const index = Math.floor(cursor.length / 2);
    const replacement = cursor[index] === 'A' ? 'B' : 'A';
    const flipped = `${cursor.slice(0, index)}${replacement}${cursor.slice(index + 1)}`;

    expect(() => codec.decode(flipped, SCOPE)).toThrow(InvalidCursorError);
  });
});

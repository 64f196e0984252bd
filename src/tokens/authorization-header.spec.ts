import { readBearerToken } from './authorization-header';

const TOKEN = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl';

function source(...values: string[]) {
  return {
    headers: values.length > 0 ? { authorization: values[0] } : {},
    rawHeaders: values.flatMap((value) => ['Authorization', value]),
  };
}

describe('readBearerToken', () => {
  it('reads a bearer token, whatever the case of the scheme', () => {
    expect(readBearerToken(source(`Bearer ${TOKEN}`))).toBe(TOKEN);
    expect(readBearerToken(source(`bearer ${TOKEN}`))).toBe(TOKEN);
  });

  it.each([
    ['no header', []],
    ['two headers', [`Bearer ${TOKEN}`, `Bearer ${TOKEN}`]],
    ['another scheme', [`Basic ${TOKEN}`]],
    ['two spaces', [`Bearer  ${TOKEN}`]],
    ['a trailing space', [`Bearer ${TOKEN} `]],
    ['two tokens', [`Bearer ${TOKEN},${TOKEN}`]],
    ['a token of four parts', [`Bearer ${TOKEN}.x`]],
    ['an empty signature', [`Bearer ${TOKEN.replace(/[^.]+$/, '')}`]],
    ['padding', [`Bearer ${TOKEN}=`]],
    ['an oversized token', [`Bearer ${'a'.repeat(5000)}.b.c`]],
  ])('refuses %s', (_name, values) => {
    expect(() => readBearerToken(source(...values))).toThrow(
      expect.objectContaining({ code: 'invalid_token' }),
    );
  });
});

import { parseUserImport } from './user-import';

const LIMITS = { usernameMaxBytes: 16, passwordMaxBytes: 12 };

describe('parseUserImport', () => {
  it('splits at the first colon and skips blank lines and comments', () => {
    const parsed = parseUserImport(
      '\uFEFF# users\n\nAlice:a:b:c\r\n   \n  # note\nbob:pw\n',
      LIMITS,
    );

    expect(parsed.problems).toEqual([]);
    expect(parsed.entries).toEqual([
      { line: 3, username: 'Alice', normalizedUsername: 'alice', password: 'a:b:c' },
      { line: 6, username: 'bob', normalizedUsername: 'bob', password: 'pw' },
    ]);
  });

  it('reports bad lines by number without any part of the line', () => {
    const text = [
      'no-colon-secret',
      'empty:',
      'long:0123456789abc',
      ':secret1',
      'x\u0000y:secret2',
      'toolongusername12345:secret3',
      'ok:pw',
      'OK:secret4',
    ].join('\n');

    const parsed = parseUserImport(text, LIMITS);

    expect(parsed.entries.map((entry) => entry.line)).toEqual([7]);
    expect(parsed.problems.map((problem) => problem.line)).toEqual([1, 2, 3, 4, 5, 6, 8]);
    expect(parsed.problems[6].reason).toBe('names the same user as line 7');
    expect(JSON.stringify(parsed.problems)).not.toMatch(/secret|0123/);
  });
});

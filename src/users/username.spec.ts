import { InvalidUsernameError, normalizeUsername } from './username';

describe('normalizeUsername', () => {
  it.each([
    ['alice', 'alice'],
    ['Alice', 'alice'],
    [' alice', 'alice'],
    ['alice\t', 'alice'],
    ['\u00a0ALICE\u3000', 'alice'],
    ['ａｌｉｃｅ', 'alice'],
    ['Ａｌｉｃｅ', 'alice'],
  ])('normalises %j to the same account as alice', (raw, expected) => {
    expect(normalizeUsername(raw)).toBe(expected);
  });

  it('keeps a look-alike from another script distinct', () => {
    const cyrillic = '\u0430lice';

    expect(normalizeUsername(cyrillic)).not.toBe('alice');
    expect(normalizeUsername(cyrillic)).toBe('\u0430lice');
  });

  it('folds compatibility forms such as the Kelvin sign and ligatures', () => {
    expect(normalizeUsername('\u212a')).toBe('k');
    expect(normalizeUsername('\ufb01le')).toBe('file');
  });

  it.each([
    ['a NUL inside', 'ali\u0000ce'],
    ['a bell', 'ali\u0007ce'],
    ['a tab inside', 'al\tice'],
    ['a line feed inside', 'al\nice'],
    ['DEL', 'alice\u007f'],
    ['a C1 control', 'alice\u0085'],
    ['a line separator inside', 'al\u2028ice'],
    ['only a zero-width space', '\u200b'],
    ['a zero-width space at the end', 'caf\u00e9\u200b'],
    ['a soft hyphen', 'caf\u00e9\u00ad'],
    ['a right-to-left override', 'a\u202eb'],
  ])('refuses %s', (_name, raw) => {
    expect(() => normalizeUsername(raw)).toThrow(InvalidUsernameError);
  });

  it('refuses a name of only white space', () => {
    expect(() => normalizeUsername('   \t ')).toThrow('username is empty');
  });

  it('refuses a lone surrogate', () => {
    expect(() => normalizeUsername('alice\ud800')).toThrow(InvalidUsernameError);
  });

  it('refuses a name longer than the byte limit once normalised', () => {
    expect(normalizeUsername('a'.repeat(8), 8)).toBe('aaaaaaaa');
    expect(() => normalizeUsername('a'.repeat(9), 8)).toThrow('username is too long');
    expect(() => normalizeUsername('é'.repeat(5), 8)).toThrow('username is too long');
  });
});

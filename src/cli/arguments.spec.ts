import { parseArguments, refusePasswordArguments } from './arguments';
import { UsageError } from './cli-error';

const USAGE = 'certs issue <user> --out <dir> [--certificate-login]';
const SPEC = { positionals: ['user'], flags: ['certificate-login'], options: ['out'] };

describe('parseArguments', () => {
  it('reads positionals, flags and options in any order', () => {
    const parsed = parseArguments(USAGE, SPEC, ['--out=/tmp/a', 'alice', '--certificate-login']);

    expect(parsed.positional('user')).toBe('alice');
    expect(parsed.option('out')).toBe('/tmp/a');
    expect(parsed.flag('certificate-login')).toBe(true);
  });

  it('takes the next word as the value of an option', () => {
    expect(parseArguments(USAGE, SPEC, ['alice', '--out', 'dir']).option('out')).toBe('dir');
  });

  it('treats everything after -- as positionals', () => {
    expect(parseArguments(USAGE, SPEC, ['--', '--odd-name']).positional('user')).toBe('--odd-name');
  });

  it.each([
    [['alice', '--unknown'], /unknown option --unknown/],
    [['alice', '-x'], /too many arguments/],
    [['alice', '--out'], /--out needs a value/],
    [['alice', '--out', 'a', '--out', 'b'], /given twice/],
    [['alice', '--certificate-login=yes'], /takes no value/],
    [[], /missing <user>/],
  ])('refuses %j', (tokens, message) => {
    expect(() => parseArguments(USAGE, SPEC, tokens)).toThrow(message);
  });

  it('reads a value that begins with one dash, such as a base64url fingerprint', () => {
    const fingerprint = '-tao1lh9l-dB0xY3bCjl1KZtf_Ms_Ywd3hIvrllqA';

    expect(parseArguments(USAGE, SPEC, [fingerprint]).positional('user')).toBe(fingerprint);
  });

  it('refuses extra positionals without echoing them', () => {
    const parse = (): unknown => parseArguments(USAGE, SPEC, ['alice', 'hunter2']);

    expect(parse).toThrow(UsageError);
    expect(parse).not.toThrow(/hunter2/);
  });
});

describe('refusePasswordArguments', () => {
  it.each(['--password=x', '--password', '-password', '--passwd=x', '--pw', '--password-stdin=x'])(
    'refuses %s',
    (token) => {
      expect(() => refusePasswordArguments(['users', 'add', 'a', token])).toThrow(/stdin/);
    },
  );

  it('accepts --password-stdin', () => {
    expect(() => refusePasswordArguments(['users', 'add', 'a', '--password-stdin'])).not.toThrow();
  });
});

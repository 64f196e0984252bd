import { GatehouseError } from '../common/gatehouse.error';
import { parseLoginBody } from './login-body';

const LIMITS = { usernameMaxBytes: 256, passwordMaxBytes: 1024 };
const JSON_TYPE = 'application/json';
const FORM_TYPE = 'application/x-www-form-urlencoded';

function parse(body: string | Buffer, contentType: string | undefined = JSON_TYPE) {
  return parseLoginBody(Buffer.from(body), contentType, LIMITS);
}

/** The refusal `work` throws: always invalid_request, with the detail it gives. */
function refusal(work: () => unknown): GatehouseError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(GatehouseError);
    expect((error as GatehouseError).code).toBe('invalid_request');
    expect((error as GatehouseError).outcome).toBe('invalid_request');
    return error as GatehouseError;
  }
  throw new Error('expected the body to be refused');
}

describe('parseLoginBody', () => {
  it('reads a JSON body', () => {
    expect(parse('{"username":"alice","password":"correct horse"}')).toEqual({
      username: 'alice',
      password: 'correct horse',
    });
  });

  it('reads a JSON body whatever the charset parameter and case of the media type', () => {
    const body = '{"username":"alice","password":"pw"}';

    expect(parse(body, 'Application/JSON; charset=utf-8').username).toBe('alice');
  });

  it('refuses a body declared in another charset rather than misreading it', () => {
    const body = '{"username":"alice","password":"pw"}';

    expect(refusal(() => parse(body, 'application/json; charset=latin1')).message).toMatch(
      /charset/,
    );
    expect(parse(body, 'application/json; charset="UTF-8"').username).toBe('alice');
  });

  it.each([
    ['a repeated password', '{"username":"m4","password":"x","password":"real"}'],
    ['a repeated username', '{"username":"root","username":"tu10","password":"x"}'],
    ['a repeat hidden by an escape', '{"username":"a","password":"x","pass\\u0077ord":"y"}'],
    [
      'a repeat behind white space',
      `{"username":"a","password"${' '.repeat(64)}:"x","password":"y"}`,
    ],
  ])('refuses JSON with %s, which a proxy might read differently', (_name, body) => {
    expect(refusal(() => parse(body)).message).toMatch(/repeats a key/);
  });

  it('accepts the same text as a value and a key', () => {
    expect(parse('{"username":"password","password":"username"}')).toEqual({
      username: 'password',
      password: 'username',
    });
  });

  it('reads a form body with percent escapes and plus signs', () => {
    expect(parse('username=al%C3%AFce&password=a+b%2Bc%26d', FORM_TYPE)).toEqual({
      username: 'alïce',
      password: 'a b+c&d',
    });
  });

  it('keeps the password exactly as sent, surrounding spaces included', () => {
    expect(parse('{"username":"alice","password":"  pw  "}').password).toBe('  pw  ');
  });

  it('accepts a password of exactly the byte limit and refuses one byte more', () => {
    const exact = 'é'.repeat(512);

    expect(parse(JSON.stringify({ username: 'alice', password: exact })).password).toBe(exact);
    const error = refusal(() =>
      parse(JSON.stringify({ username: 'alice', password: `${exact}x` })),
    );
    expect(error.message).toBe('password is longer than 1024 bytes');
  });

  it.each([
    ['no body', ''],
    ['a missing password', '{"username":"alice"}'],
    ['a missing username', '{"password":"pw"}'],
    ['a number', '{"username":1,"password":"pw"}'],
    ['null', '{"username":"alice","password":null}'],
    ['an array', '{"username":["alice"],"password":"pw"}'],
    ['an object', '{"username":"alice","password":{"$gt":""}}'],
    ['an empty string', '{"username":"","password":"pw"}'],
    ['an extra field', '{"username":"alice","password":"pw","role":"admin"}'],
    ['a __proto__ field', '{"__proto__":{},"username":"alice","password":"pw"}'],
    ['a JSON array', '[{"username":"alice","password":"pw"}]'],
    ['a JSON string', '"alice"'],
    ['JSON null', 'null'],
    ['broken JSON', '{"username":"alice",'],
    ['a NUL in the password', '{"username":"alice","password":"p\\u0000w"}'],
    ['a lone surrogate', '{"username":"alice\\udc00","password":"pw"}'],
    ['deep nesting', `{"username":${'['.repeat(100)}${']'.repeat(100)},"password":"pw"}`],
  ])('refuses a JSON body with %s', (_name, body) => {
    refusal(() => parse(body));
  });

  it('refuses JSON that is not UTF-8', () => {
    const body = Buffer.concat([
      Buffer.from('{"username":"al'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('ice","password":"pw"}'),
    ]);

    expect(refusal(() => parse(body)).message).toBe('request body is not valid UTF-8');
  });

  it('does not count brackets inside strings as nesting', () => {
    const password = '[[[[[[{{{{{{';

    expect(parse(JSON.stringify({ username: 'alice', password })).password).toBe(password);
  });

  it.each([
    ['a repeated field', 'username=alice&username=bob&password=pw'],
    ['a repeated password', 'username=alice&password=a&password=b'],
    ['a bad percent escape', 'username=ali%zzce&password=pw'],
    ['a truncated percent escape', 'username=alice&password=pw%4'],
    ['percent-encoded bytes that are not UTF-8', 'username=ali%FFce&password=pw'],
    ['a percent-encoded NUL', 'username=alice&password=p%00w'],
    ['an extra field', 'username=alice&password=pw&remember=1'],
    ['a field without a value', 'username=alice&password'],
  ])('refuses a form body with %s', (_name, body) => {
    refusal(() => parse(body, FORM_TYPE));
  });

  it('refuses raw bytes in a form that are not UTF-8', () => {
    const body = Buffer.concat([
      Buffer.from('username=ali'),
      Buffer.from([0xe9]),
      Buffer.from('&password=pw'),
    ]);

    refusal(() => parse(body, FORM_TYPE));
  });

  it.each([
    ['text/plain', 'text/plain'],
    ['multipart', 'multipart/form-data; boundary=x'],
    ['JSON look-alikes', 'application/json-patch+json'],
    ['no content type', undefined],
  ])('refuses %s', (_name, contentType) => {
    const body = Buffer.from('{"username":"alice","password":"pw"}');
    const error = refusal(() => parseLoginBody(body, contentType, LIMITS));

    expect(error.options.publicDetail).toBe('content type must be JSON or form');
  });

  it('refuses a body that was not read raw', () => {
    refusal(() => parseLoginBody({ username: 'alice', password: 'pw' }, JSON_TYPE, LIMITS));
  });

  it('never puts the password into what it tells the client', () => {
    const password = 'hunter2-secret';
    const error = refusal(() => parse(`{"username":"alice","password":"${password}","x":1}`));

    expect(error.message).not.toContain(password);
    expect(error.options.publicDetail ?? '').not.toContain(password);
  });
});

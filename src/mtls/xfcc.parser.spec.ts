import { fingerprintOf } from './fingerprint';
import { buildTestPki, bundleOf, TestPki, urlEncodedPem } from './testing/certificate-builders';
import {
  MAX_XFCC_BYTES,
  parseXfcc,
  readXfccCertificate,
  XfccElement,
  XfccParseError,
} from './xfcc.parser';

function elementsOf(headerValue: string): XfccElement[] {
  const result = parseXfcc(headerValue);
  if (!result.ok) {
    throw new Error(`expected to parse: ${result.error.message}`);
  }
  return result.elements;
}

function parseErrorOf(headerValue: string): XfccParseError {
  const result = parseXfcc(headerValue);
  if (result.ok) {
    throw new Error('expected a parse error');
  }
  return result.error;
}

describe('parseXfcc', () => {
  it('reads the key=value pairs of one element', () => {
    const [element] = elementsOf('By=spiffe://gatehouse/api;Hash=abc;URI=spiffe://client/alice');

    expect(element.pairs).toEqual([
      ['by', 'spiffe://gatehouse/api'],
      ['hash', 'abc'],
      ['uri', 'spiffe://client/alice'],
    ]);
  });

  it('treats keys case-insensitively', () => {
    const [element] = elementsOf('BY=a;hash=b;Cert=c;CHAIN=d;subject=e;Uri=f;dns=g');

    expect(
      ['By', 'Hash', 'Cert', 'Chain', 'Subject', 'URI', 'DNS'].map((key) => element.get(key)),
    ).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  });

  it('unquotes quoted values', () => {
    const [element] = elementsOf('Subject="CN=alice,O=Gatehouse"');

    expect(element.get('subject')).toBe('CN=alice,O=Gatehouse');
  });

  it('keeps commas inside quoted values', () => {
    const elements = elementsOf('Subject="O=Example, Inc.,CN=alice";URI=spiffe://a');

    expect(elements).toHaveLength(1);
    expect(elements[0].get('subject')).toBe('O=Example, Inc.,CN=alice');
  });

  it('keeps semicolons and equals signs inside quoted values', () => {
    const [element] = elementsOf('Subject="CN=a;b=c";DNS=x');

    expect(element.get('subject')).toBe('CN=a;b=c');
    expect(element.get('dns')).toBe('x');
  });

  it('unescapes backslash-escaped quotes and backslashes', () => {
    const [element] = elementsOf('Subject="CN=\\"quoted\\" \\\\ name"');

    expect(element.get('subject')).toBe('CN="quoted" \\ name');
  });

  it('accepts empty values, quoted or not', () => {
    const [element] = elementsOf('Subject="";URI=;DNS=');

    expect(element.pairs).toEqual([
      ['subject', ''],
      ['uri', ''],
      ['dns', ''],
    ]);
  });

  it('keeps every value of a repeated key, in order', () => {
    const [element] = elementsOf('URI=spiffe://a;URI=spiffe://b;DNS=one.example;DNS=two.example');

    expect(element.getAll('URI')).toEqual(['spiffe://a', 'spiffe://b']);
    expect(element.getAll('dns')).toEqual(['one.example', 'two.example']);
    expect(element.get('uri')).toBe('spiffe://a');
  });

  it('splits several elements at commas outside quotes', () => {
    const elements = elementsOf('By=a;Hash=1,By=b;Subject="x,y";Hash=2');

    expect(elements.map((element) => element.get('by'))).toEqual(['a', 'b']);
    expect(elements[1].get('subject')).toBe('x,y');
  });

  it('accepts white space around separators, as joined header lines carry', () => {
    const elements = elementsOf(' By=a ; Hash=1 , By=b ');

    expect(elements.map((element) => element.pairs)).toEqual([
      [
        ['by', 'a'],
        ['hash', '1'],
      ],
      [['by', 'b']],
    ]);
  });

  it('keeps equals signs inside unquoted values', () => {
    const [element] = elementsOf('By=https://proxy.example/?a=b');

    expect(element.get('by')).toBe('https://proxy.example/?a=b');
  });

  it('reads an empty header as no elements', () => {
    expect(elementsOf('')).toEqual([]);
    expect(elementsOf('   ')).toEqual([]);
  });

  it('reports an unknown key as absent', () => {
    const [element] = elementsOf('By=a');

    expect(element.get('cert')).toBeUndefined();
    expect(element.getAll('cert')).toEqual([]);
  });

  it.each([
    ['an unterminated quote', 'Subject="CN=alice;By=a', /unterminated quoted value/],
    ['a quote ending in a backslash', 'Subject="CN=alice\\', /unterminated quoted value/],
    ['an empty key', '=value', /expected a key/],
    ['a pair without equals', 'By=a;Hash', /expected '='/],
    ['an empty pair', 'By=a;;Hash=b', /expected a key/],
    ['an empty element', 'By=a,,By=b', /expected a key/],
    ['a trailing comma', 'By=a,', /expected a key/],
    ['a trailing semicolon', 'By=a;', /expected a key/],
    ['text after a quoted value', 'Subject="a"b;By=c', /expected ','/],
    ['a quote inside an unquoted value', 'By=a"b"', /unexpected character/],
    ['a space inside an unquoted value', 'By=a b', /expected ','/],
    ['a key with spaces', 'not a header', /expected '='/],
    ['a key with odd characters', 'B{y}=a', /expected '='/],
    ['a control character in a quoted value', 'Subject="a\u0001b"', /control character/],
    ['plain garbage', '\u0000\u0001', /expected a key/],
  ])('refuses %s with a parse error', (_case, headerValue, message) => {
    const error = parseErrorOf(headerValue);

    expect(error).toBeInstanceOf(XfccParseError);
    expect(error.message).toMatch(message);
    expect(error.position).toBeGreaterThanOrEqual(0);
  });

  it('refuses a header longer than the limit', () => {
    expect(parseErrorOf(`By=${'a'.repeat(MAX_XFCC_BYTES)}`).message).toMatch(/longer than/);
  });

  it('reports where the error is', () => {
    expect(parseErrorOf('By=a;Hash').position).toBe(9);
  });
});

describe('readXfccCertificate', () => {
  let pki: TestPki;

  beforeAll(async () => {
    pki = await buildTestPki();
  });

  function envoyElement(fields: string[]): string {
    return ['By=spiffe://gatehouse/api', ...fields].join(';');
  }

  it('reads the Cert of the single element', () => {
    const header = envoyElement([
      `Hash=${fingerprintOf(pki.clientLeaf.der)}`,
      `Cert="${urlEncodedPem(pki.clientLeaf)}"`,
      'Subject="CN=alice,O=Gatehouse"',
      'URI=spiffe://client/alice',
    ]);

    expect(readXfccCertificate(header)).toEqual({
      kind: 'certificate',
      der: pki.clientLeaf.der,
      chain: [],
    });
  });

  it('reads an unquoted Cert without a Hash', () => {
    const result = readXfccCertificate(`Cert=${urlEncodedPem(pki.clientLeaf)}`);

    expect(result).toMatchObject({ kind: 'certificate', der: pki.clientLeaf.der });
  });

  it('accepts a Hash in upper case', () => {
    const header = envoyElement([
      `Hash=${fingerprintOf(pki.clientLeaf.der).toUpperCase()}`,
      `Cert=${urlEncodedPem(pki.clientLeaf)}`,
    ]);

    expect(readXfccCertificate(header).kind).toBe('certificate');
  });

  it('returns the Chain certificates other than the leaf', () => {
    const header = envoyElement([
      `Cert=${urlEncodedPem(pki.intermediateLeaf)}`,
      `Chain=${encodeURIComponent(bundleOf(pki.intermediateLeaf, pki.intermediate))}`,
    ]);

    expect(readXfccCertificate(header)).toEqual({
      kind: 'certificate',
      der: pki.intermediateLeaf.der,
      chain: [pki.intermediate.der],
    });
  });

  it('reports a Hash that does not match the Cert', () => {
    const header = envoyElement([
      `Hash=${fingerprintOf(pki.otherCaLeaf.der)}`,
      `Cert=${urlEncodedPem(pki.clientLeaf)}`,
    ]);

    expect(readXfccCertificate(header)).toEqual({
      kind: 'hash_mismatch',
      detail: 'x-forwarded-client-cert Hash does not match its Cert',
    });
  });

  it('refuses a Hash that is not a SHA-256 hex digest', () => {
    const header = envoyElement(['Hash=xyz', `Cert=${urlEncodedPem(pki.clientLeaf)}`]);

    expect(readXfccCertificate(header).kind).toBe('malformed');
  });

  it('reports none for an absent or empty header', () => {
    expect(readXfccCertificate(undefined)).toEqual({ kind: 'none' });
    expect(readXfccCertificate('')).toEqual({ kind: 'none' });
    expect(readXfccCertificate([])).toEqual({ kind: 'none' });
  });

  it('refuses several elements', () => {
    const one = envoyElement([`Cert=${urlEncodedPem(pki.clientLeaf)}`]);

    expect(readXfccCertificate(`${one},${one}`)).toEqual({
      kind: 'malformed',
      detail: 'x-forwarded-client-cert has 2 elements, expected one',
    });
  });

  it('refuses several header lines, which are several elements', () => {
    const one = envoyElement([`Cert=${urlEncodedPem(pki.clientLeaf)}`]);

    expect(readXfccCertificate([one, one]).kind).toBe('malformed');
  });

  it('refuses an element without a Cert', () => {
    const header = envoyElement([
      `Hash=${fingerprintOf(pki.clientLeaf.der)}`,
      'Subject="CN=alice"',
    ]);

    expect(readXfccCertificate(header).kind).toBe('malformed');
  });

  it('refuses repeated Cert or Hash keys', () => {
    const cert = `Cert=${urlEncodedPem(pki.clientLeaf)}`;
    const hash = `Hash=${fingerprintOf(pki.clientLeaf.der)}`;

    expect(readXfccCertificate(envoyElement([cert, cert])).kind).toBe('malformed');
    expect(readXfccCertificate(envoyElement([hash, hash, cert])).kind).toBe('malformed');
  });

  it('refuses a Cert holding several certificates', () => {
    const header = `Cert=${encodeURIComponent(bundleOf(pki.clientLeaf, pki.otherCaLeaf))}`;

    expect(readXfccCertificate(header).kind).toBe('malformed');
  });

  it('refuses a Cert that is not URL-encoded PEM', () => {
    expect(readXfccCertificate('Cert=%ZZ').kind).toBe('malformed');
    expect(readXfccCertificate('Cert=hello').kind).toBe('malformed');
    expect(readXfccCertificate(`Cert=${encodeURIComponent(pki.clientLeaf.keyPem)}`).kind).toBe(
      'malformed',
    );
  });

  it('refuses a Chain that is not certificates', () => {
    const header = envoyElement([`Cert=${urlEncodedPem(pki.clientLeaf)}`, 'Chain=garbage']);

    expect(readXfccCertificate(header).kind).toBe('malformed');
  });

  it.each(['Cert="unterminated', 'Cert', '=;=;=', 'garbage with spaces', '\u0000'])(
    'answers malformed, never throws, for %j',
    (headerValue) => {
      expect(readXfccCertificate(headerValue).kind).toBe('malformed');
    },
  );
});

import { parseByteSequenceItem, parseByteSequenceList, readRfc9440Certificate } from './rfc9440';
import { buildTestPki, TestPki } from './testing/certificate-builders';

function byteSequence(bytes: Buffer): string {
  return `:${bytes.toString('base64')}:`;
}

describe('readRfc9440Certificate', () => {
  let pki: TestPki;

  beforeAll(async () => {
    pki = await buildTestPki();
  });

  it('reads the DER of Client-Cert', () => {
    const result = readRfc9440Certificate({ 'client-cert': byteSequence(pki.clientLeaf.der) });

    expect(result).toEqual({ kind: 'certificate', der: pki.clientLeaf.der, chain: [] });
  });

  it('reads Client-Cert-Chain as the presented intermediates', () => {
    const result = readRfc9440Certificate({
      'client-cert': byteSequence(pki.intermediateLeaf.der),
      'client-cert-chain': `${byteSequence(pki.intermediate.der)}, ${byteSequence(pki.ca.der)}`,
    });

    expect(result).toEqual({
      kind: 'certificate',
      der: pki.intermediateLeaf.der,
      chain: [pki.intermediate.der, pki.ca.der],
    });
  });

  it('joins several Client-Cert-Chain lines into one list', () => {
    const result = readRfc9440Certificate({
      'client-cert': byteSequence(pki.intermediateLeaf.der),
      'client-cert-chain': [byteSequence(pki.intermediate.der), byteSequence(pki.ca.der)],
    });

    expect(result).toMatchObject({ chain: [pki.intermediate.der, pki.ca.der] });
  });

  it('ignores well-formed parameters', () => {
    const result = readRfc9440Certificate({
      'client-cert': `${byteSequence(pki.clientLeaf.der)};a=1;b;c="x;y";d=?0;e=tok/en;f=:AAAA:`,
    });

    expect(result.kind).toBe('certificate');
  });

  it('reports none without the header', () => {
    expect(readRfc9440Certificate({})).toEqual({ kind: 'none' });
    expect(readRfc9440Certificate({ 'client-cert': '' })).toEqual({ kind: 'none' });
  });

  it('refuses a chain without a certificate', () => {
    const result = readRfc9440Certificate({ 'client-cert-chain': byteSequence(pki.ca.der) });

    expect(result.kind).toBe('malformed');
  });

  it('refuses two Client-Cert lines', () => {
    const value = byteSequence(pki.clientLeaf.der);

    expect(readRfc9440Certificate({ 'client-cert': [value, value] }).kind).toBe('malformed');
  });

  it('refuses two certificates in one Client-Cert value', () => {
    const value = `${byteSequence(pki.clientLeaf.der)}, ${byteSequence(pki.ca.der)}`;

    expect(readRfc9440Certificate({ 'client-cert': value }).kind).toBe('malformed');
  });

  it('refuses a byte sequence that is not a certificate', () => {
    const result = readRfc9440Certificate({ 'client-cert': byteSequence(Buffer.from('hello')) });

    expect(result).toEqual({ kind: 'malformed', detail: 'client-cert is not a DER certificate' });
  });

  it('refuses PEM in place of a byte sequence', () => {
    expect(readRfc9440Certificate({ 'client-cert': pki.clientLeaf.pem }).kind).toBe('malformed');
  });

  it('refuses a chain member that is not a certificate', () => {
    const result = readRfc9440Certificate({
      'client-cert': byteSequence(pki.clientLeaf.der),
      'client-cert-chain': `${byteSequence(pki.ca.der)}, :aGVsbG8=:`,
    });

    expect(result.kind).toBe('malformed');
  });

  it('refuses an oversized Client-Cert', () => {
    const huge = `:${'A'.repeat(20000)}:`;

    expect(readRfc9440Certificate({ 'client-cert': huge })).toMatchObject({
      kind: 'malformed',
      detail: expect.stringMatching(/larger than/),
    });
  });

  it('refuses a chain of more than eight certificates', () => {
    const member = byteSequence(pki.ca.der);

    const result = readRfc9440Certificate({
      'client-cert': byteSequence(pki.clientLeaf.der),
      'client-cert-chain': Array.from({ length: 9 }, () => member).join(', '),
    });

    expect(result.kind).toBe('malformed');
  });
});

describe('parseByteSequenceItem', () => {
  it('decodes a padded byte sequence', () => {
    expect(parseByteSequenceItem(':aGVsbG8=:')).toEqual({ ok: true, bytes: Buffer.from('hello') });
  });

  it('decodes an unpadded byte sequence', () => {
    expect(parseByteSequenceItem(':aGVsbG8:')).toEqual({ ok: true, bytes: Buffer.from('hello') });
  });

  it('allows surrounding spaces', () => {
    expect(parseByteSequenceItem('  :aGVsbG8=:  ').ok).toBe(true);
  });

  it.each([
    ['no colons', 'aGVsbG8='],
    ['an unterminated sequence', ':aGVsbG8='],
    ['base64url characters', ':aGV-bG8_:'],
    ['an inner space', ':aGVs bG8=:'],
    ['misplaced padding', ':aG=VsbG8:'],
    ['a padded length not a multiple of four', ':aGVsbG8==:'],
    ['set spare bits', ':aGVsbG9=:'],
    ['an impossible length', ':aGVsb:'],
    ['an empty sequence', '::'],
    ['trailing text', ':aGVsbG8=:x'],
    ['a string', '"aGVsbG8="'],
    ['a token', 'aGVsbG8'],
    ['an inner list', '(:aGVsbG8=:)'],
    ['a bad parameter key', ':aGVsbG8=:;A=1'],
    ['a bad parameter value', ':aGVsbG8=:;a=@'],
    ['an unterminated parameter string', ':aGVsbG8=:;a="x'],
    ['a bad boolean', ':aGVsbG8=:;a=?2'],
    ['a leading tab', '\t:aGVsbG8=:'],
  ])('refuses %s', (_case, text) => {
    expect(parseByteSequenceItem(text).ok).toBe(false);
  });
});

describe('parseByteSequenceList', () => {
  it('reads members separated by commas and optional white space', () => {
    expect(parseByteSequenceList(':aGVsbG8=:,:d29ybGQ=:  ,\t:IQ==:')).toEqual({
      ok: true,
      items: [Buffer.from('hello'), Buffer.from('world'), Buffer.from('!')],
    });
  });

  it('reads an empty list', () => {
    expect(parseByteSequenceList('')).toEqual({ ok: true, items: [] });
  });

  it.each([
    ['a trailing comma', ':aGVsbG8=:,'],
    ['an empty member', ':aGVsbG8=:,,:d29ybGQ=:'],
    ['a missing comma', ':aGVsbG8=: :d29ybGQ=:'],
    ['a token member', ':aGVsbG8=:, abc'],
  ])('refuses %s', (_case, text) => {
    expect(parseByteSequenceList(text).ok).toBe(false);
  });
});

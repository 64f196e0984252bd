import { fingerprintOf } from './fingerprint';
import { ForwardedCertificate, malformed } from './forwarded-certificate';
import { decodeCertificatePems, decodeSingleCertificatePem } from './pem';

export const XFCC_HEADER = 'x-forwarded-client-cert';
/**
 * Headers that carry identity in this format; stripped from requests not sent by a trusted proxy.
 */
export const XFCC_IDENTITY_HEADERS = [XFCC_HEADER] as const;

/** A leaf, several intermediates and the quoting overhead fit well inside this. */
export const MAX_XFCC_BYTES = 64 * 1024;
const MAX_CHAIN_CERTIFICATES = 9;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const KEY_CHARACTER = /[A-Za-z0-9_-]/;
const UNQUOTED_VALUE_CHARACTER = /[\x21\x23-\x2b\x2d-\x3a\x3c-\x7e\x80-\uffff]/;

/** Where and why an XFCC header value does not follow the grammar. */
export class XfccParseError extends Error {
  constructor(
    reason: string,
    readonly position: number,
  ) {
    super(`${reason} at character ${position}`);
    this.name = 'XfccParseError';
  }
}

/** One proxy hop's description of a client certificate: its key=value pairs, keys lower-cased. */
export class XfccElement {
  constructor(readonly pairs: ReadonlyArray<readonly [key: string, value: string]>) {}

  /** Every value of a key, in order; Envoy repeats URI and DNS for each SAN. */
  getAll(key: string): string[] {
    const wanted = key.toLowerCase();
    return this.pairs.filter(([name]) => name === wanted).map(([, value]) => value);
  }

  get(key: string): string | undefined {
    return this.getAll(key)[0];
  }
}

export type XfccParseResult =
  { ok: true; elements: XfccElement[] } | { ok: false; error: XfccParseError };

/** Parses the Envoy `x-forwarded-client-cert` grammar; never throws on bad input. */
export function parseXfcc(headerValue: string): XfccParseResult {
  if (headerValue.length > MAX_XFCC_BYTES) {
    return { ok: false, error: new XfccParseError(`longer than ${MAX_XFCC_BYTES} bytes`, 0) };
  }
  try {
    return { ok: true, elements: new XfccParser(headerValue).parse() };
  } catch (error) {
    if (error instanceof XfccParseError) {
      return { ok: false, error };
    }
    throw error;
  }
}

/**
 * Reads the one certificate a trusted Envoy forwarded. Several elements mean a proxy appended to
 * a header the client supplied, so nothing in it can be attributed to our proxy alone.
 */
export function readXfccCertificate(
  headerValue: string | string[] | undefined,
): ForwardedCertificate {
  const text = (Array.isArray(headerValue) ? headerValue.join(',') : (headerValue ?? '')).trim();
  if (text === '') {
    return { kind: 'none' };
  }
  const parsed = parseXfcc(text);
  if (!parsed.ok) {
    return malformed(`${XFCC_HEADER}: ${parsed.error.message}`);
  }
  if (parsed.elements.length !== 1) {
    return malformed(`${XFCC_HEADER} has ${parsed.elements.length} elements, expected one`);
  }
  return readElement(parsed.elements[0]);
}

function readElement(element: XfccElement): ForwardedCertificate {
  const certificates = element.getAll('cert');
  const hashes = element.getAll('hash');
  const chains = element.getAll('chain');
  if (certificates.length !== 1 || hashes.length > 1 || chains.length > 1) {
    return malformed(`${XFCC_HEADER} needs exactly one Cert and at most one Hash and Chain`);
  }

  const leaf = decodeLeaf(certificates[0]);
  if (!leaf.ok) {
    return malformed(`${XFCC_HEADER} Cert: ${leaf.detail}`);
  }

  if (hashes.length === 1) {
    const hash = hashes[0].toLowerCase();
    if (!SHA256_HEX.test(hash)) {
      return malformed(`${XFCC_HEADER} Hash is not a SHA-256 hex digest`);
    }
    // The proxy hashed the certificate it saw; a different Cert means the value was altered.
    if (hash !== fingerprintOf(leaf.der)) {
      return { kind: 'hash_mismatch', detail: `${XFCC_HEADER} Hash does not match its Cert` };
    }
  }

  const chain = chains.length === 1 ? decodeChain(chains[0]) : { ok: true as const, ders: [] };
  if (!chain.ok) {
    return malformed(`${XFCC_HEADER} Chain: ${chain.detail}`);
  }
  const intermediates = chain.ders.filter((der) => !der.equals(leaf.der));
  return { kind: 'certificate', der: leaf.der, chain: intermediates };
}

function decodeLeaf(value: string): { ok: true; der: Buffer } | { ok: false; detail: string } {
  const pem = urlDecode(value);
  return pem === null
    ? { ok: false, detail: 'not valid URL encoding' }
    : decodeSingleCertificatePem(pem);
}

function decodeChain(value: string): { ok: true; ders: Buffer[] } | { ok: false; detail: string } {
  const pem = urlDecode(value);
  return pem === null
    ? { ok: false, detail: 'not valid URL encoding' }
    : decodeCertificatePems(pem, MAX_CHAIN_CERTIFICATES);
}

function urlDecode(value: string): string | null {
  try {
    return decodeURIComponent(value);
  } catch {
    return null;
  }
}

/**
 * element = pair *( OWS ";" OWS pair ), elements separated by OWS "," OWS;
 * pair = key "=" ( quoted-value / unquoted-value ); a quoted value may hold `,`, `;` and `=`,
 * and a backslash escapes the next character.
 */
class XfccParser {
  private position = 0;

  constructor(private readonly text: string) {}

  parse(): XfccElement[] {
    const elements: XfccElement[] = [];
    this.skipWhitespace();
    if (this.atEnd()) {
      return elements;
    }
    for (;;) {
      elements.push(this.parseElement());
      this.skipWhitespace();
      if (this.atEnd()) {
        return elements;
      }
      this.expect(',');
      this.skipWhitespace();
    }
  }

  private parseElement(): XfccElement {
    const pairs: Array<readonly [string, string]> = [];
    for (;;) {
      pairs.push(this.parsePair());
      this.skipWhitespace();
      if (this.peek() !== ';') {
        return new XfccElement(pairs);
      }
      this.position += 1;
      this.skipWhitespace();
    }
  }

  private parsePair(): readonly [string, string] {
    const start = this.position;
    while (!this.atEnd() && KEY_CHARACTER.test(this.peek())) {
      this.position += 1;
    }
    if (this.position === start) {
      throw this.error('expected a key');
    }
    const key = this.text.slice(start, this.position).toLowerCase();
    this.expect('=');
    const value = this.peek() === '"' ? this.parseQuotedValue() : this.parseUnquotedValue();
    return [key, value];
  }

  private parseQuotedValue(): string {
    const opening = this.position;
    this.position += 1;
    let value = '';
    while (!this.atEnd()) {
      const character = this.text[this.position];
      this.position += 1;
      if (character === '"') {
        return value;
      }
      if (isControl(character)) {
        throw this.error('control character in quoted value');
      }
      if (character === '\\') {
        if (this.atEnd()) {
          break;
        }
        value += this.text[this.position];
        this.position += 1;
      } else {
        value += character;
      }
    }
    throw new XfccParseError('unterminated quoted value', opening);
  }

  private parseUnquotedValue(): string {
    const start = this.position;
    while (!this.atEnd() && UNQUOTED_VALUE_CHARACTER.test(this.peek())) {
      this.position += 1;
    }
    const next = this.peek();
    if (!this.atEnd() && next !== ',' && next !== ';' && next !== ' ' && next !== '\t') {
      throw this.error(`unexpected character ${JSON.stringify(next)} in value`);
    }
    return this.text.slice(start, this.position);
  }

  private expect(character: string): void {
    if (this.peek() !== character) {
      throw this.error(`expected '${character}'`);
    }
    this.position += 1;
  }

  private skipWhitespace(): void {
    while (this.peek() === ' ' || this.peek() === '\t') {
      this.position += 1;
    }
  }

  private peek(): string {
    return this.text[this.position] ?? '';
  }

  private atEnd(): boolean {
    return this.position >= this.text.length;
  }

  private error(reason: string): XfccParseError {
    return new XfccParseError(reason, this.position);
  }
}

function isControl(character: string): boolean {
  const code = character.charCodeAt(0);
  return (code < 0x20 && character !== '\t') || code === 0x7f;
}

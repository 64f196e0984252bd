import {
  ForwardedCertificate,
  ForwardedHeaders,
  malformed,
  singleHeader,
} from './forwarded-certificate';
import { isParseableCertificate, MAX_CERTIFICATE_PEM_BYTES } from './pem';

export const CLIENT_CERT_HEADER = 'client-cert';
export const CLIENT_CERT_CHAIN_HEADER = 'client-cert-chain';
/**
 * Headers that carry identity in this format; stripped from requests not sent by a trusted proxy.
 */
export const RFC9440_IDENTITY_HEADERS = [CLIENT_CERT_HEADER, CLIENT_CERT_CHAIN_HEADER] as const;

const MAX_CHAIN_BYTES = 64 * 1024;
const MAX_CHAIN_CERTIFICATES = 8;

export type ByteSequenceResult = { ok: true; bytes: Buffer } | { ok: false; detail: string };
export type ByteSequenceListResult = { ok: true; items: Buffer[] } | { ok: false; detail: string };

/**
 * Reads RFC 9440 `Client-Cert` (a structured-field Byte Sequence holding the DER) and the optional
 * `Client-Cert-Chain` (a List of them). Parsing is strict: anything outside RFC 8941 is refused.
 */
export function readRfc9440Certificate(headers: ForwardedHeaders): ForwardedCertificate {
  const certificate = singleHeader(headers, CLIENT_CERT_HEADER);
  if (!certificate.ok) {
    return malformed(certificate.detail);
  }
  const chainValue = headers[CLIENT_CERT_CHAIN_HEADER];
  const chainText = Array.isArray(chainValue) ? chainValue.join(',') : chainValue;

  if (!certificate.value) {
    return chainText
      ? malformed(`${CLIENT_CERT_CHAIN_HEADER} sent without ${CLIENT_CERT_HEADER}`)
      : { kind: 'none' };
  }
  if (certificate.value.length > MAX_CERTIFICATE_PEM_BYTES) {
    return malformed(`${CLIENT_CERT_HEADER} larger than ${MAX_CERTIFICATE_PEM_BYTES} bytes`);
  }
  const leaf = parseByteSequenceItem(certificate.value);
  if (!leaf.ok) {
    return malformed(`${CLIENT_CERT_HEADER}: ${leaf.detail}`);
  }
  if (!isParseableCertificate(leaf.bytes)) {
    return malformed(`${CLIENT_CERT_HEADER} is not a DER certificate`);
  }

  const chain = chainText ? readChain(chainText) : { ok: true as const, items: [] };
  if (!chain.ok) {
    return malformed(`${CLIENT_CERT_CHAIN_HEADER}: ${chain.detail}`);
  }
  return { kind: 'certificate', der: leaf.bytes, chain: chain.items };
}

function readChain(text: string): ByteSequenceListResult {
  if (text.length > MAX_CHAIN_BYTES) {
    return { ok: false, detail: `larger than ${MAX_CHAIN_BYTES} bytes` };
  }
  const chain = parseByteSequenceList(text);
  if (!chain.ok) {
    return chain;
  }
  if (chain.items.length > MAX_CHAIN_CERTIFICATES) {
    return { ok: false, detail: `more than ${MAX_CHAIN_CERTIFICATES} certificates` };
  }
  return chain.items.every(isParseableCertificate)
    ? chain
    : { ok: false, detail: 'a member is not a DER certificate' };
}

/** Parses a structured-field Item (RFC 8941) whose bare item must be a Byte Sequence. */
export function parseByteSequenceItem(text: string): ByteSequenceResult {
  try {
    const reader = new StructuredFieldReader(text);
    reader.skipSpaces();
    const bytes = reader.readByteSequenceItem();
    reader.skipSpaces();
    reader.expectEnd();
    return { ok: true, bytes };
  } catch (error) {
    return { ok: false, detail: structuredFieldDetail(error) };
  }
}

/** Parses a structured-field List (RFC 8941) whose members must all be Byte Sequences. */
export function parseByteSequenceList(text: string): ByteSequenceListResult {
  try {
    const reader = new StructuredFieldReader(text);
    const items: Buffer[] = [];
    reader.skipSpaces();
    while (!reader.atEnd()) {
      items.push(reader.readByteSequenceItem());
      reader.skipWhitespace();
      if (reader.atEnd()) {
        break;
      }
      reader.expect(',');
      reader.skipWhitespace();
      if (reader.atEnd()) {
        throw new StructuredFieldError('trailing comma');
      }
    }
    return { ok: true, items };
  } catch (error) {
    return { ok: false, detail: structuredFieldDetail(error) };
  }
}

class StructuredFieldError extends Error {}

function structuredFieldDetail(error: unknown): string {
  if (error instanceof StructuredFieldError) {
    return error.message;
  }
  throw error;
}

const BASE64_CHARACTERS = /^[A-Za-z0-9+/]*={0,2}$/;
const KEY_START = /[a-z*]/;
const KEY_CHARACTER = /[a-z0-9_\-.*]/;
const TOKEN_START = /[A-Za-z*]/;
const TOKEN_CHARACTER = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/;

/** The subset of RFC 8941 section 4.2 needed here: byte sequences, with any valid parameters. */
class StructuredFieldReader {
  private position = 0;

  constructor(private readonly text: string) {}

  readByteSequenceItem(): Buffer {
    if (this.peek() !== ':') {
      throw new StructuredFieldError(`expected a byte sequence at character ${this.position}`);
    }
    const bytes = this.readByteSequence();
    this.skipParameters();
    return bytes;
  }

  private readByteSequence(): Buffer {
    this.position += 1;
    const end = this.text.indexOf(':', this.position);
    if (end === -1) {
      throw new StructuredFieldError('unterminated byte sequence');
    }
    const encoded = this.text.slice(this.position, end);
    this.position = end + 1;
    return decodeBase64Strictly(encoded);
  }

  /** Parameters carry nothing we use, but must still be well formed (RFC 8941 4.2.3.2). */
  private skipParameters(): void {
    while (this.peek() === ';') {
      this.position += 1;
      this.skipSpaces();
      this.readKey();
      if (this.peek() === '=') {
        this.position += 1;
        this.skipBareItem();
      }
    }
  }

  private readKey(): void {
    if (!KEY_START.test(this.peek())) {
      throw new StructuredFieldError(`expected a parameter key at character ${this.position}`);
    }
    this.skipWhile(KEY_CHARACTER);
  }

  private skipBareItem(): void {
    const first = this.peek();
    if (first === ':') {
      this.readByteSequence();
    } else if (first === '"') {
      this.skipString();
    } else if (first === '?') {
      this.position += 1;
      this.skipOneOf('01', 'boolean');
    } else if (first === '-' || /[0-9]/.test(first)) {
      this.skipNumber();
    } else if (TOKEN_START.test(first)) {
      this.skipWhile(TOKEN_CHARACTER);
    } else {
      throw new StructuredFieldError(`expected a parameter value at character ${this.position}`);
    }
  }

  private skipString(): void {
    this.position += 1;
    while (!this.atEnd()) {
      const character = this.text[this.position];
      this.position += 1;
      if (character === '"') {
        return;
      }
      if (character === '\\') {
        this.skipOneOf('"\\', 'string escape');
      } else if (character < ' ' || character > '~') {
        throw new StructuredFieldError('invalid character in string');
      }
    }
    throw new StructuredFieldError('unterminated string');
  }

  private skipNumber(): void {
    const match = /^-?[0-9]{1,15}(?:\.[0-9]{1,3})?/.exec(this.text.slice(this.position));
    if (!match) {
      throw new StructuredFieldError(`invalid number at character ${this.position}`);
    }
    this.position += match[0].length;
  }

  private skipOneOf(allowed: string, what: string): void {
    if (this.atEnd() || !allowed.includes(this.peek())) {
      throw new StructuredFieldError(`invalid ${what} at character ${this.position}`);
    }
    this.position += 1;
  }

  private skipWhile(pattern: RegExp): void {
    while (!this.atEnd() && pattern.test(this.peek())) {
      this.position += 1;
    }
  }

  skipSpaces(): void {
    while (this.peek() === ' ') {
      this.position += 1;
    }
  }

  skipWhitespace(): void {
    while (this.peek() === ' ' || this.peek() === '\t') {
      this.position += 1;
    }
  }

  expect(character: string): void {
    if (this.peek() !== character) {
      throw new StructuredFieldError(`expected '${character}' at character ${this.position}`);
    }
    this.position += 1;
  }

  expectEnd(): void {
    if (!this.atEnd()) {
      throw new StructuredFieldError(`unexpected text at character ${this.position}`);
    }
  }

  atEnd(): boolean {
    return this.position >= this.text.length;
  }

  private peek(): string {
    return this.text[this.position] ?? '';
  }
}

/**
 * Node's base64 decoder skips characters it does not know; check the alphabet, the padding and
 * the spare bits first so one header value has exactly one meaning.
 */
function decodeBase64Strictly(encoded: string): Buffer {
  const padded = encoded.includes('=');
  if (
    encoded === '' ||
    !BASE64_CHARACTERS.test(encoded) ||
    (padded && encoded.length % 4 !== 0) ||
    (!padded && encoded.length % 4 === 1)
  ) {
    throw new StructuredFieldError('byte sequence is not valid base64');
  }
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.toString('base64').replace(/=+$/, '') !== encoded.replace(/=+$/, '')) {
    throw new StructuredFieldError('byte sequence is not canonical base64');
  }
  return bytes;
}

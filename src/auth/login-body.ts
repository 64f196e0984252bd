import { invalidRequest } from '../common/gatehouse.error';

export interface LoginCredentials {
  username: string;
  password: string;
}

export interface CredentialLimits {
  usernameMaxBytes: number;
  passwordMaxBytes: number;
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });
const MAX_JSON_DEPTH = 4;

function decodeUtf8(body: Buffer): string {
  try {
    return STRICT_UTF8.decode(body);
  } catch {
    throw invalidRequest('request body is not valid UTF-8', 'body is not valid UTF-8');
  }
}

const WHITE_SPACE = /[ \t\n\r]*/y;

function isFollowedByColon(text: string, from: number): boolean {
  WHITE_SPACE.lastIndex = from;
  WHITE_SPACE.exec(text);
  return text[WHITE_SPACE.lastIndex] === ':';
}

/** A key as JSON.parse will see it, escapes resolved, so `"pass\u0077ord"` is `password`. */
function decodeJsonString(token: string): string {
  try {
    return JSON.parse(token) as string;
  } catch {
    throw invalidRequest('body is not valid JSON');
  }
}

/**
 * Rejects deep nesting before JSON.parse walks it (a login body is one flat object), and repeated
 * top-level keys: JSON.parse keeps the last, while a proxy or firewall in front may read the
 * first, so the two would act on different credentials.
 */
function assertShallowJson(text: string): void {
  let depth = 0;
  let inString = false;
  let stringStart = 0;
  const topLevelKeys = new Set<string>();
  for (let index = 0; index < text.length; index += 1) {
    const character = text[index];
    if (inString) {
      if (character === '\\') {
        index += 1;
      } else if (character === '"') {
        inString = false;
        if (depth === 1 && isFollowedByColon(text, index + 1)) {
          const key = decodeJsonString(text.slice(stringStart, index + 1));
          if (topLevelKeys.has(key)) {
            throw invalidRequest('JSON body repeats a key', 'a field is repeated');
          }
          topLevelKeys.add(key);
        }
      }
    } else if (character === '"') {
      inString = true;
      stringStart = index;
    } else if (character === '{' || character === '[') {
      depth += 1;
      if (depth > MAX_JSON_DEPTH) {
        throw invalidRequest('JSON body nests too deeply', 'body nests too deeply');
      }
    } else if (character === '}' || character === ']') {
      depth -= 1;
    }
  }
}

function parseJson(text: string): Record<string, unknown> {
  assertShallowJson(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalidRequest('body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalidRequest('body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

function parseForm(text: string): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const pair of text.split('&')) {
    if (pair === '') {
      continue;
    }
    const separator = pair.indexOf('=');
    const rawName = separator === -1 ? pair : pair.slice(0, separator);
    const rawValue = separator === -1 ? '' : pair.slice(separator + 1);
    const name = decodeFormComponent(rawName);
    if (Object.prototype.hasOwnProperty.call(fields, name)) {
      throw invalidRequest('form field repeated', `field ${safeName(name)} is repeated`);
    }
    fields[name] = decodeFormComponent(rawValue);
  }
  return fields;
}

/** Percent-decoding that refuses sequences which are not UTF-8 instead of replacing them. */
function decodeFormComponent(component: string): string {
  const bytes: number[] = [];
  const plain = component.replace(/\+/g, ' ');
  for (let index = 0; index < plain.length; index += 1) {
    const character = plain[index];
    if (character === '%') {
      const hex = plain.slice(index + 1, index + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
        throw invalidRequest('form body has a bad percent escape');
      }
      bytes.push(Number.parseInt(hex, 16));
      index += 2;
    } else {
      // The body was read as latin1, so each character is exactly one byte of the original.
      bytes.push(character.charCodeAt(0));
    }
  }
  return decodeUtf8(Buffer.from(bytes));
}

function safeName(name: string): string {
  return /^[a-z_]{1,32}$/i.test(name) ? name : '(unprintable)';
}

function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

/** Bodies are read as UTF-8; a body declared in another charset is refused, not misread. */
function assertUtf8Charset(contentType: string | undefined): void {
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(contentType ?? '')?.[1];
  if (charset !== undefined && !['utf-8', 'utf8'].includes(charset.toLowerCase())) {
    throw invalidRequest('unsupported charset', 'charset must be utf-8');
  }
}

function requireString(fields: Record<string, unknown>, name: string, maxBytes: number): string {
  const value = fields[name];
  if (typeof value !== 'string') {
    throw invalidRequest(`${name} must be a string`);
  }
  if (value === '') {
    throw invalidRequest(`${name} is empty`);
  }
  if (Buffer.byteLength(value, 'utf8') > maxBytes) {
    throw invalidRequest(`${name} is longer than ${maxBytes} bytes`);
  }
  if (!value.isWellFormed() || value.includes('\u0000')) {
    throw invalidRequest(`${name} holds characters that are not allowed`);
  }
  return value;
}

/**
 * Reads `username` and `password` from a JSON or form body, and nothing else: no other fields,
 * no query string, strings only, bounded sizes, strict UTF-8. Passwords are never truncated;
 * an oversized one is refused before any hash.
 */
export function parseLoginBody(
  body: unknown,
  contentType: string | undefined,
  limits: CredentialLimits,
): LoginCredentials {
  if (!Buffer.isBuffer(body) || body.length === 0) {
    throw invalidRequest('request has no body');
  }
  const mediaType = mediaTypeOf(contentType);
  assertUtf8Charset(contentType);
  let fields: Record<string, unknown>;
  if (mediaType === 'application/json') {
    fields = parseJson(decodeUtf8(body));
  } else if (mediaType === 'application/x-www-form-urlencoded') {
    fields = parseForm(body.toString('latin1'));
  } else {
    throw invalidRequest('unsupported content type', 'content type must be JSON or form');
  }
  const unexpected = Object.keys(fields).filter(
    (name) => name !== 'username' && name !== 'password',
  );
  if (unexpected.length > 0) {
    throw invalidRequest('unexpected fields', 'only username and password are accepted');
  }
  return {
    username: requireString(fields, 'username', limits.usernameMaxBytes),
    password: requireString(fields, 'password', limits.passwordMaxBytes),
  };
}

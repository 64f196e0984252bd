/** Why a username cannot be used; the request is answered 400 invalid_request. */
export class InvalidUsernameError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'InvalidUsernameError';
  }
}

// Control characters (C0, DEL, C1), the Unicode line and paragraph separators, and invisible
// format characters (zero-width spaces and joiners, soft hyphens, bidirectional overrides), which
// would let one name look like another, or like nothing, in the audit and the logs.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\p{Cf}]/u;

/**
 * The one normalisation applied before any lookup or counter: NFKC, trim white space at both
 * ends, refuse any control character left, lower-case, NFKC again. `Alice`, ` alice`, `alice\t`
 * and fullwidth `ａｌｉｃｅ` all become `alice`; look-alikes from other scripts stay distinct.
 */
export function normalizeUsername(raw: string, maxBytes = 256): string {
  if (!raw.isWellFormed()) {
    throw new InvalidUsernameError('username is not valid Unicode');
  }
  const trimmed = raw.normalize('NFKC').trim();
  if (CONTROL_CHARACTER.test(trimmed)) {
    throw new InvalidUsernameError('username contains a control character or an invisible one');
  }
  const normalized = trimmed.toLowerCase().normalize('NFKC');
  if (normalized === '') {
    throw new InvalidUsernameError('username is empty');
  }
  if (Buffer.byteLength(normalized, 'utf8') > maxBytes) {
    throw new InvalidUsernameError('username is too long');
  }
  return normalized;
}

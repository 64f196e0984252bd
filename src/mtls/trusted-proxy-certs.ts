import { normalizeFingerprint } from './fingerprint';

/**
 * Parses TRUSTED_PROXY_CERTS: a comma list of SHA-256 fingerprints in any accepted form, returned
 * as lower hex. An entry that is not a fingerprint throws, naming it, rather than being skipped:
 * a silently dropped entry would leave a proxy unrecognised with no clue why.
 */
export function parseTrustedProxyCertificates(list: string): Set<string> {
  const fingerprints = new Set<string>();
  const entries = list
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  for (const [index, entry] of entries.entries()) {
    try {
      fingerprints.add(normalizeFingerprint(entry));
    } catch (error) {
      throw new Error(`entry ${index + 1}: ${(error as Error).message}`);
    }
  }
  return fingerprints;
}

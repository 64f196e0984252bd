import { ipv6Prefixes } from '../mtls/client-ip';

/**
 * The source an attempt is attributed to: the address for IPv4, the /64 for native IPv6 (one
 * host usually holds a whole /64), spelled as the limiter spells its block subjects.
 */
export function sourceOf(clientIp: string): string {
  return ipv6Prefixes(clientIp).find((prefix) => prefix.endsWith('/64')) ?? clientIp;
}

/** The same grouping in SQL, over the `client_ip` column. Its text is re-spelled by sourceOf. */
export const SOURCE_SQL = `CASE WHEN family(client_ip) = 6
  THEN host(network(set_masklen(client_ip, 64))) ELSE host(client_ip) END`;

/** Escapes anything outside printable ASCII, for log lines. */
export function printable(text: string): string {
  return text.replace(
    /[^\x20-\x7e]|\\/g,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

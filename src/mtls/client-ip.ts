import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

export interface AddressRange {
  address: Address;
  prefixLength: number;
  /** The entry as the operator wrote it, for messages. */
  text: string;
}

/**
 * Trusting a whole /0 (or anything near it) would let every host on the internet vouch for a
 * client address and for certificate headers. Proxies sit in a known, narrow range; a prefix this
 * short is almost always a typo or a copy-pasted "allow all", so it stops the start instead.
 */
const SHORTEST_TRUSTED_PREFIX = { ipv4: 8, ipv6: 16 } as const;

/** Longer than any real proxy chain; bounds the work a forged header can cause. */
const MAX_FORWARDED_FOR_LENGTH = 4096;

/**
 * Canonical text of an address: IPv4-mapped IPv6 becomes IPv4, IPv6 is RFC 5952 compressed lower
 * case. Zone ids, short or hexadecimal IPv4 forms, brackets and ports give null.
 */
export function canonicalIp(address: string): string | null {
  const parsed = parseAddress(address);
  return parsed ? parsed.toString() : null;
}

/** The /64 and /48 networks of a native IPv6 address, the units its owner usually controls. */
export function ipv6Prefixes(ip: string): string[] {
  const parsed = parseAddress(ip);
  if (!(parsed instanceof ipaddr.IPv6)) {
    return [];
  }
  return [64, 48].map(
    (prefixLength) => `${networkOf(parsed, prefixLength).toString()}/${prefixLength}`,
  );
}

/** A set of IPv4 and IPv6 ranges; IPv4-mapped IPv6 addresses match their IPv4 ranges. */
export class AddressMatcher {
  constructor(readonly ranges: readonly AddressRange[]) {}

  static none(): AddressMatcher {
    return new AddressMatcher([]);
  }

  get isEmpty(): boolean {
    return this.ranges.length === 0;
  }

  contains(ip: string): boolean {
    const address = parseAddress(ip);
    if (!address) {
      return false;
    }
    return this.ranges.some(
      (range) =>
        range.address.kind() === address.kind() && address.match(range.address, range.prefixLength),
    );
  }
}

/**
 * Parses a comma-separated list of IPs and CIDRs. Throws an Error naming the first bad entry; the
 * caller adds the setting's name.
 */
export function parseAddressRanges(list: string): AddressRange[] {
  return list
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map(parseRange);
}

/** Parses TRUSTED_PROXIES, refusing catch-all ranges (see SHORTEST_TRUSTED_PREFIX). */
export function parseTrustedProxies(list: string): AddressMatcher {
  const ranges = parseAddressRanges(list);
  for (const range of ranges) {
    const shortest = SHORTEST_TRUSTED_PREFIX[range.address.kind()];
    if (range.prefixLength < shortest) {
      throw new Error(
        `'${range.text}' is too wide to trust as a proxy ` +
          `(an ${range.address.kind()} prefix must be /${shortest} or longer)`,
      );
    }
  }
  return new AddressMatcher(ranges);
}

export type ClientIpResolution =
  | { ok: true; clientIp: string; forwardedFor: string | null; viaTrustedProxy: boolean }
  | { ok: false; detail: string };

/**
 * Finds the client address the way proxy-addr does. X-Forwarded-For is read only when the socket
 * peer is a trusted proxy, and then from the right: each trusted hop vouches for the one to its
 * left, and the first hop that is not trusted is the client. Everything further left was written
 * by the client and is neither used nor validated, so a proxy that appends to a client's header
 * (nginx's `$proxy_add_x_forwarded_for`) cannot be defeated by a forged left-most entry.
 */
export function resolveClientIp(
  socketAddress: string | undefined,
  xForwardedFor: string | string[] | undefined,
  trusted: AddressMatcher,
): ClientIpResolution {
  const peer = socketAddress === undefined ? null : canonicalIp(socketAddress);
  if (peer === null) {
    return { ok: false, detail: 'socket address is not readable' };
  }
  if (!trusted.contains(peer)) {
    return { ok: true, clientIp: peer, forwardedFor: null, viaTrustedProxy: false };
  }

  const forwardedFor = Array.isArray(xForwardedFor) ? xForwardedFor.join(',') : xForwardedFor;
  if (forwardedFor === undefined || forwardedFor.trim() === '') {
    return { ok: false, detail: 'trusted proxy sent no X-Forwarded-For' };
  }
  if (forwardedFor.length > MAX_FORWARDED_FOR_LENGTH) {
    return {
      ok: false,
      detail: `X-Forwarded-For longer than ${MAX_FORWARDED_FOR_LENGTH} characters`,
    };
  }

  const hops = forwardedFor.split(',').map((hop) => hop.trim());
  const client = clientHop(hops, trusted);
  return client.ok
    ? { ok: true, clientIp: client.ip, forwardedFor: hops.join(', '), viaTrustedProxy: true }
    : client;
}

function clientHop(
  hops: string[],
  trusted: AddressMatcher,
): { ok: true; ip: string } | { ok: false; detail: string } {
  let ip = '';
  for (let index = hops.length - 1; index >= 0; index -= 1) {
    const canonical = canonicalIp(hops[index]);
    if (canonical === null) {
      return { ok: false, detail: `X-Forwarded-For hop ${index + 1} is not an IP address` };
    }
    ip = canonical;
    if (!trusted.contains(ip)) {
      break;
    }
  }
  return { ok: true, ip };
}

function parseAddress(text: string): Address | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return ipaddr.IPv4.parse(text);
  }
  // The zone id names an interface of the sender's host; it has no meaning here.
  if (text.includes('%') || !ipaddr.IPv6.isValid(text)) {
    return null;
  }
  const address = ipaddr.IPv6.parse(text);
  return address.isIPv4MappedAddress() ? address.toIPv4Address() : address;
}

function parseRange(entry: string): AddressRange {
  const slash = entry.indexOf('/');
  const address = parseAddress(slash === -1 ? entry : entry.slice(0, slash));
  const prefixText = slash === -1 ? null : entry.slice(slash + 1);
  if (!address || (prefixText !== null && !/^(0|[1-9][0-9]{0,2})$/.test(prefixText))) {
    throw new Error(`'${entry}' is not an IP address or CIDR range`);
  }

  const mapped = slash !== -1 && entry.slice(0, slash).includes(':') && address.kind() === 'ipv4';
  const maximum = address.kind() === 'ipv4' ? 32 : 128;
  let prefixLength = prefixText === null ? maximum : Number(prefixText);
  if (mapped) {
    // ::ffff:10.0.0.0/104 is the IPv4 range 10.0.0.0/8 written in its mapped form.
    prefixLength -= 96;
    if (prefixLength < 0) {
      throw new Error(`'${entry}' reaches beyond the IPv4-mapped range`);
    }
  }
  if (prefixLength > maximum) {
    throw new Error(`'${entry}' has a prefix longer than /${maximum}`);
  }
  return { address, prefixLength, text: entry };
}

function networkOf(address: ipaddr.IPv6, prefixLength: number): ipaddr.IPv6 {
  const bytes = address.toByteArray().map((byte, index) => {
    const bitsKept = Math.min(8, Math.max(0, prefixLength - index * 8));
    return byte & (0xff << (8 - bitsKept));
  });
  return ipaddr.fromByteArray(bytes) as ipaddr.IPv6;
}

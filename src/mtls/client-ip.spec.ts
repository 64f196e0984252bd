import {
  AddressMatcher,
  canonicalIp,
  ipv6Prefixes,
  parseAddressRanges,
  parseTrustedProxies,
  resolveClientIp,
} from './client-ip';

describe('canonicalIp', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::FFFF:cb00:7107', '203.0.113.7'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
  ])('canonicalises %s as %s', (address, canonical) => {
    expect(canonicalIp(address)).toBe(canonical);
  });

  it.each([
    ['a zone id', 'fe80::1%eth0'],
    ['a port', '203.0.113.7:443'],
    ['brackets', '[2001:db8::1]'],
    ['a short IPv4 form', '127.1'],
    ['a hexadecimal IPv4 form', '0x7f.0.0.1'],
    ['leading zeros', '010.0.0.1'],
    ['an out-of-range octet', '256.0.0.1'],
    ['a name', 'localhost'],
    ['white space', ' 203.0.113.7'],
    ['nothing', ''],
    ['a CIDR', '10.0.0.0/8'],
  ])('refuses %s', (_case, address) => {
    expect(canonicalIp(address)).toBeNull();
  });
});

describe('ipv6Prefixes', () => {
  it('gives the /64 and /48 of a native IPv6 address', () => {
    expect(ipv6Prefixes('2001:db8:aaaa:bbbb:1:2:3:4')).toEqual([
      '2001:db8:aaaa:bbbb::/64',
      '2001:db8:aaaa::/48',
    ]);
  });

  it('masks bits inside a group', () => {
    expect(ipv6Prefixes('2001:db8:1234:5678:9abc::1')).toEqual([
      '2001:db8:1234:5678::/64',
      '2001:db8:1234::/48',
    ]);
  });

  it('gives nothing for IPv4 or mapped IPv4', () => {
    expect(ipv6Prefixes('203.0.113.7')).toEqual([]);
    expect(ipv6Prefixes('::ffff:203.0.113.7')).toEqual([]);
  });

  it('gives nothing for an invalid address', () => {
    expect(ipv6Prefixes('not an address')).toEqual([]);
  });
});

describe('parseTrustedProxies', () => {
  it('reads IPs and CIDRs of both families', () => {
    const matcher = parseTrustedProxies('10.0.0.0/8, 192.0.2.10,2001:db8::/32, ::1');

    expect(matcher.ranges.map((range) => [range.address.toString(), range.prefixLength])).toEqual([
      ['10.0.0.0', 8],
      ['192.0.2.10', 32],
      ['2001:db8::', 32],
      ['::1', 128],
    ]);
  });

  it('reads an empty list as trusting no one', () => {
    expect(parseTrustedProxies('').isEmpty).toBe(true);
    expect(parseTrustedProxies(' , ').isEmpty).toBe(true);
  });

  it('reads a mapped IPv4 range as its IPv4 range', () => {
    const matcher = parseTrustedProxies('::ffff:10.0.0.0/104');

    expect(matcher.contains('10.1.2.3')).toBe(true);
    expect(matcher.contains('11.0.0.1')).toBe(false);
  });

  it.each([
    '0.0.0.0/0',
    '::/0',
    '0.0.0.0/1',
    '10.0.0.0/7',
    '2000::/3',
    '2001::/15',
    '::ffff:0:0/96',
  ])('refuses the catch-all %s, naming it', (entry) => {
    expect(() => parseTrustedProxies(`10.0.0.1, ${entry}`)).toThrow(
      new RegExp(`'${entry.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}' is too wide`),
    );
  });

  it('accepts the narrowest allowed prefixes', () => {
    expect(() => parseTrustedProxies('10.0.0.0/8, 2001::/16')).not.toThrow();
  });

  it.each([
    '10.0.0.0/33',
    '2001:db8::/129',
    '10.0.0.0/',
    '10.0.0.0/08',
    'proxy.internal',
    '10.0.0.0/8/8',
    'fe80::1%eth0',
    '::ffff:1.2.3.4/95',
  ])('refuses the invalid entry %s, naming it', (entry) => {
    expect(() => parseTrustedProxies(`10.0.0.1,${entry}`)).toThrow(entry);
  });
});

describe('parseAddressRanges', () => {
  it('allows wide ranges, for lists that are not about trust', () => {
    expect(parseAddressRanges('0.0.0.0/0')[0].prefixLength).toBe(0);
  });
});

describe('AddressMatcher', () => {
  const matcher = parseTrustedProxies('10.0.0.0/8, 192.0.2.10, 2001:db8:1::/48');

  it('matches addresses inside its ranges', () => {
    expect(matcher.contains('10.255.0.1')).toBe(true);
    expect(matcher.contains('192.0.2.10')).toBe(true);
    expect(matcher.contains('2001:db8:1:ffff::1')).toBe(true);
  });

  it('does not match addresses outside its ranges', () => {
    expect(matcher.contains('11.0.0.1')).toBe(false);
    expect(matcher.contains('192.0.2.11')).toBe(false);
    expect(matcher.contains('2001:db8:2::1')).toBe(false);
  });

  it('matches IPv4-mapped IPv6 addresses against IPv4 ranges', () => {
    expect(matcher.contains('::ffff:10.1.2.3')).toBe(true);
    expect(matcher.contains('::ffff:192.0.2.11')).toBe(false);
  });

  it('matches nothing that is not an address', () => {
    expect(matcher.contains('')).toBe(false);
    expect(matcher.contains('10.0.0.1:80')).toBe(false);
  });

  it('matches nothing when empty', () => {
    expect(AddressMatcher.none().contains('127.0.0.1')).toBe(false);
  });
});

describe('resolveClientIp', () => {
  const trusted = parseTrustedProxies('10.0.0.0/8, 2001:db8:ffff::/48');

  it('ignores a forged X-Forwarded-For from an untrusted peer', () => {
    expect(resolveClientIp('198.51.100.9', '10.0.0.5, 203.0.113.1', trusted)).toEqual({
      ok: true,
      clientIp: '198.51.100.9',
      forwardedFor: null,
      viaTrustedProxy: false,
    });
  });

  it('ignores even a malformed X-Forwarded-For from an untrusted peer', () => {
    expect(resolveClientIp('198.51.100.9', 'garbage', trusted)).toMatchObject({
      ok: true,
      clientIp: '198.51.100.9',
    });
  });

  it('takes the address the trusted proxy appended', () => {
    expect(resolveClientIp('10.0.0.2', '203.0.113.5', trusted)).toEqual({
      ok: true,
      clientIp: '203.0.113.5',
      forwardedFor: '203.0.113.5',
      viaTrustedProxy: true,
    });
  });

  it('reads a chain of trusted proxies from the right', () => {
    const result = resolveClientIp(
      '10.0.0.2',
      '198.51.100.1, 203.0.113.5, 10.0.0.3, 10.0.0.4',
      trusted,
    );

    expect(result).toEqual({
      ok: true,
      clientIp: '203.0.113.5',
      forwardedFor: '198.51.100.1, 203.0.113.5, 10.0.0.3, 10.0.0.4',
      viaTrustedProxy: true,
    });
  });

  it('never lets the client choose its address by writing the left-most hop', () => {
    const first = resolveClientIp('10.0.0.2', '1.1.1.1, 203.0.113.5', trusted);
    const second = resolveClientIp('10.0.0.2', '2.2.2.2, 203.0.113.5', trusted);

    expect(first.ok && first.clientIp).toBe('203.0.113.5');
    expect(second.ok && second.clientIp).toBe('203.0.113.5');
  });

  it('takes the left-most hop when every hop is trusted', () => {
    expect(resolveClientIp('10.0.0.2', '10.0.0.9, 10.0.0.3', trusted)).toMatchObject({
      ok: true,
      clientIp: '10.0.0.9',
    });
  });

  it('joins several header lines in order', () => {
    const result = resolveClientIp('10.0.0.2', ['198.51.100.1, 203.0.113.5', '10.0.0.3'], trusted);

    expect(result).toMatchObject({
      clientIp: '203.0.113.5',
      forwardedFor: '198.51.100.1, 203.0.113.5, 10.0.0.3',
    });
  });

  it('canonicalises mapped IPv4 peers and hops', () => {
    const result = resolveClientIp(
      '::ffff:10.0.0.2',
      '::ffff:203.0.113.5, ::ffff:10.0.0.3',
      trusted,
    );

    expect(result).toMatchObject({ ok: true, clientIp: '203.0.113.5', viaTrustedProxy: true });
  });

  it('canonicalises a mapped IPv4 peer that is not trusted', () => {
    expect(resolveClientIp('::ffff:198.51.100.9', undefined, trusted)).toMatchObject({
      clientIp: '198.51.100.9',
      viaTrustedProxy: false,
    });
  });

  it('compresses IPv6 client addresses', () => {
    const result = resolveClientIp('2001:db8:ffff::1', '2001:DB8:0:0:0:0:0:42', trusted);

    expect(result).toMatchObject({ ok: true, clientIp: '2001:db8::42' });
  });

  it('refuses a trusted proxy request without X-Forwarded-For', () => {
    expect(resolveClientIp('10.0.0.2', undefined, trusted)).toEqual({
      ok: false,
      detail: 'trusted proxy sent no X-Forwarded-For',
    });
    expect(resolveClientIp('10.0.0.2', '  ', trusted).ok).toBe(false);
    expect(resolveClientIp('10.0.0.2', [], trusted).ok).toBe(false);
  });

  it.each([
    'unknown',
    '203.0.113.5:4711',
    '[2001:db8::1]',
    'fe80::1%eth0',
    '203.0.113.5,',
    '10.0.0.3,,',
  ])('refuses the invalid hop in %j from a trusted proxy', (forwardedFor) => {
    expect(resolveClientIp('10.0.0.2', forwardedFor, trusted).ok).toBe(false);
  });

  it('does not validate hops the client wrote left of its own address', () => {
    // A client behind a proxy that writes "unknown" must not be turned away for it.
    expect(resolveClientIp('10.0.0.2', 'unknown, 203.0.113.5', trusted)).toMatchObject({
      ok: true,
      clientIp: '203.0.113.5',
    });
  });

  it('refuses an oversized X-Forwarded-For', () => {
    const huge = Array.from({ length: 400 }, () => '203.0.113.5').join(', ');

    expect(resolveClientIp('10.0.0.2', huge, trusted).ok).toBe(false);
  });

  it('refuses an unreadable socket address', () => {
    expect(resolveClientIp(undefined, undefined, trusted).ok).toBe(false);
    expect(resolveClientIp('', undefined, trusted).ok).toBe(false);
  });

  it('treats every peer as the client when no proxy is trusted', () => {
    expect(resolveClientIp('10.0.0.2', '203.0.113.5', AddressMatcher.none())).toMatchObject({
      clientIp: '10.0.0.2',
      viaTrustedProxy: false,
    });
  });
});

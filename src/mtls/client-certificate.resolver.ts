import { X509Certificate } from 'node:crypto';
import type { TLSSocket, DetailedPeerCertificate } from 'node:tls';
import { CertificateVerifier } from './certificate-verifier';
import { AddressMatcher, ClientIpResolution, canonicalIp, resolveClientIp } from './client-ip';
import { fingerprintOf } from './fingerprint';
import { ForwardedCertificate, ForwardedHeaders } from './forwarded-certificate';
import { NGINX_IDENTITY_HEADERS, readNginxCertificate } from './nginx-headers';
import { RFC9440_IDENTITY_HEADERS, readRfc9440Certificate } from './rfc9440';
import { ClientCertificateResult } from './verified-certificate';
import { XFCC_HEADER, XFCC_IDENTITY_HEADERS, readXfccCertificate } from './xfcc.parser';
import { MtlsMode, ProxyCertHeader } from '../config/app-config';

/** Every header name any supported proxy format uses to carry a client certificate. */
export const IDENTITY_HEADERS: readonly string[] = [
  ...NGINX_IDENTITY_HEADERS,
  ...XFCC_IDENTITY_HEADERS,
  ...RFC9440_IDENTITY_HEADERS,
];

export interface MtlsSettings {
  mode: MtlsMode;
  /** Verifies client certificates against TLS_CA_FILE; absent in `off` mode. */
  verifier?: CertificateVerifier;
  trustedProxies: AddressMatcher;
  /** SHA-256 fingerprints of the proxies' own client certificates; empty means IP trust. */
  trustedProxyCertificates: ReadonlySet<string>;
  proxyCertHeader: ProxyCertHeader;
}

/** The parts of a request the resolver reads; Fastify's raw IncomingMessage provides them. */
export interface RequestSource {
  headers: ForwardedHeaders;
  socket: { remoteAddress?: string } & Partial<Pick<TLSSocket, 'getPeerCertificate'>>;
}

/** Where a refusal was decided: forwarded refusals come before throttling in the decision table. */
export type CertificateResolution = ClientCertificateResult & { stage?: 'forwarded' | 'direct' };

export type MalformedIdentity = { status: 'malformed'; detail: string };

function peerCertificateChain(socket: RequestSource['socket']): {
  leaf?: Buffer;
  chain: X509Certificate[];
} {
  if (typeof socket.getPeerCertificate !== 'function') {
    return { chain: [] };
  }
  const peer = socket.getPeerCertificate(true) as DetailedPeerCertificate;
  if (!peer || !peer.raw) {
    return { chain: [] };
  }
  const chain: X509Certificate[] = [];
  let current = peer.issuerCertificate;
  while (current && current.raw && current !== current.issuerCertificate && chain.length < 8) {
    chain.push(new X509Certificate(current.raw));
    current = current.issuerCertificate;
  }
  return { leaf: peer.raw, chain };
}

/**
 * Produces the verified client certificate of a request, or the reason there is none, from the
 * TLS handshake (direct), from a trusted proxy's headers (proxy), or never (off). Identity
 * headers count only from a trusted proxy; from anyone else they are a forgery.
 */
export class ClientCertificateResolver {
  constructor(private readonly settings: MtlsSettings) {}

  get mode(): MtlsMode {
    return this.settings.mode;
  }

  /** True when the socket peer may vouch for client addresses and certificates. */
  isTrustedProxy(source: RequestSource): boolean {
    if (this.settings.mode !== 'proxy') {
      return false;
    }
    const peer = canonicalIp(source.socket.remoteAddress ?? '');
    if (peer === null || !this.settings.trustedProxies.contains(peer)) {
      return false;
    }
    if (this.settings.trustedProxyCertificates.size === 0) {
      return true;
    }
    const { leaf } = peerCertificateChain(source.socket);
    return leaf !== undefined && this.settings.trustedProxyCertificates.has(fingerprintOf(leaf));
  }

  clientAddress(source: RequestSource): ClientIpResolution {
    const trusted = this.isTrustedProxy(source)
      ? this.settings.trustedProxies
      : AddressMatcher.none();
    return resolveClientIp(source.socket.remoteAddress, source.headers['x-forwarded-for'], trusted);
  }

  hasIdentityHeaders(source: RequestSource): boolean {
    return IDENTITY_HEADERS.some((name) => source.headers[name] !== undefined);
  }

  resolve(source: RequestSource): CertificateResolution | MalformedIdentity {
    const trustedProxy = this.isTrustedProxy(source);
    if (!trustedProxy && this.hasIdentityHeaders(source)) {
      return {
        status: 'refused',
        reason: 'spoofed_header',
        detail: 'certificate identity headers from a peer that is not a trusted proxy',
        stage: 'forwarded',
      };
    }
    if (this.settings.mode === 'off' || !this.settings.verifier) {
      return { status: 'absent' };
    }
    if (this.settings.mode === 'direct') {
      return this.fromHandshake(source);
    }
    if (!trustedProxy) {
      // A direct client of a proxy-mode listener has no certificate anyone vouched for.
      return { status: 'absent' };
    }
    return this.fromForwarded(this.readForwarded(source.headers));
  }

  /**
   * Known shortcoming: the chain is verified again on every request, not once per connection,
   * which is most of the cost of a refused request presenting a certificate. Caching the result
   * per TLS socket and re-checking only the dates on each request would remove it.
   */
  private fromHandshake(source: RequestSource): CertificateResolution {
    const { leaf, chain } = peerCertificateChain(source.socket);
    if (!leaf) {
      return { status: 'absent' };
    }
    const verification = this.settings.verifier!.verify(leaf, chain);
    if (!verification.ok) {
      return {
        status: 'refused',
        reason: 'untrusted_cert',
        detail: verification.detail,
        certificate: verification.certificate,
        stage: 'direct',
      };
    }
    return { status: 'verified', certificate: verification.certificate };
  }

  private readForwarded(headers: ForwardedHeaders): ForwardedCertificate {
    switch (this.settings.proxyCertHeader) {
      case 'envoy':
        return readXfccCertificate(headers[XFCC_HEADER]);
      case 'rfc9440':
        return readRfc9440Certificate(headers);
      default:
        return readNginxCertificate(headers);
    }
  }

  private fromForwarded(
    forwarded: ForwardedCertificate,
  ): CertificateResolution | MalformedIdentity {
    switch (forwarded.kind) {
      case 'none':
        return { status: 'absent' };
      case 'malformed':
        return { status: 'malformed', detail: forwarded.detail };
      case 'failed':
      case 'hash_mismatch':
        return {
          status: 'refused',
          reason: 'untrusted_cert',
          detail: forwarded.detail,
          stage: 'forwarded',
        };
      case 'certificate': {
        // Raw DER, not parsed here: the verifier refuses a chain member it cannot parse, where
        // `new X509Certificate` would throw and turn a forged header into a server error.
        const verification = this.settings.verifier!.verify(forwarded.der, forwarded.chain);
        return verification.ok
          ? { status: 'verified', certificate: verification.certificate }
          : {
              status: 'refused',
              reason: 'untrusted_cert',
              detail: verification.detail,
              certificate: verification.certificate,
              stage: 'forwarded',
            };
      }
    }
  }
}

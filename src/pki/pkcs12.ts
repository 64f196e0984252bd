import * as forge from 'node-forge';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { Pkcs12ExportOptions } from './pki.types';
import { x509 } from './x509-support';

const { asn1 } = forge;
const ITERATIONS = 2048;
const SALT_BYTES = 16;
const MAC_ID = 3;

/**
 * Packs a client identity (key, certificate, CA) into a password-protected PKCS#12 file that
 * OpenSSL 3, curl, browsers and keychains import. node-forge's own PKCS#12 writer handles RSA keys
 * only, so the structure is assembled here from its ASN.1 and PBES2 building blocks: the key bag is
 * AES-256-CBC with PBKDF2-HMAC-SHA256 and the integrity MAC is HMAC-SHA256.
 */
export function exportPkcs12(options: Pkcs12ExportOptions): Buffer {
  if (options.password.length === 0) {
    // Importers disagree on whether an empty password means "no password" or "the empty one".
    throw new Error('A PKCS#12 export needs a non-empty password');
  }

  const certificateDer = pemToDer(options.certificatePem);
  const attributes = bagAttributes(certificateDer, options.friendlyName);

  const certificates = safeContents([
    certificateBag(certificateDer, attributes),
    certificateBag(pemToDer(options.caCertificatePem)),
  ]);
  const key = safeContents([shroudedKeyBag(options.privateKeyPem, options.password, attributes)]);
  const authenticatedSafe = sequence([dataContentInfo(certificates), dataContentInfo(key)]);

  const pfx = sequence([
    integer(3),
    dataContentInfo(authenticatedSafe),
    macData(toDer(authenticatedSafe), options.password),
  ]);
  return Buffer.from(toDer(pfx), 'binary');
}

function pemToDer(pem: string): string {
  const [der] = x509.PemConverter.decode(pem);
  if (!der) {
    throw new Error('Expected a PEM block');
  }
  return Buffer.from(der).toString('binary');
}

/** localKeyId (SHA-1 of the certificate, the convention importers pair key and certificate by). */
function bagAttributes(certificateDer: string, friendlyName?: string): forge.asn1.Asn1 {
  const localKeyId = createHash('sha1').update(Buffer.from(certificateDer, 'binary')).digest();
  const attributes = [attribute(forge.pki.oids.localKeyId, octetString(localKeyId))];
  if (friendlyName !== undefined) {
    attributes.push(attribute(forge.pki.oids.friendlyName, bmpString(friendlyName)));
  }
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, attributes);
}

function certificateBag(certificateDer: string, attributes?: forge.asn1.Asn1): forge.asn1.Asn1 {
  const certBag = sequence([
    oid(forge.pki.oids.x509Certificate),
    explicit([octetString(Buffer.from(certificateDer, 'binary'))]),
  ]);
  return safeBag(forge.pki.oids.certBag, certBag, attributes);
}

function shroudedKeyBag(
  privateKeyPem: string,
  password: string,
  attributes: forge.asn1.Asn1,
): forge.asn1.Asn1 {
  const privateKeyInfo = asn1.fromDer(pemToDer(privateKeyPem));
  // PBES2 passwords are UTF-8 bytes (OpenSSL 3 and RFC 8018), unlike the MAC's BMPString below.
  const encrypted = forge.pki.encryptPrivateKeyInfo(
    privateKeyInfo,
    forge.util.encodeUtf8(password),
    {
      algorithm: 'aes256',
      prfAlgorithm: 'sha256',
      count: ITERATIONS,
      saltSize: SALT_BYTES,
    } as forge.pki.EncryptionOptions,
  );
  return safeBag(forge.pki.oids.pkcs8ShroudedKeyBag, encrypted, attributes);
}

function safeBag(
  bagId: string,
  value: forge.asn1.Asn1,
  attributes?: forge.asn1.Asn1,
): forge.asn1.Asn1 {
  const parts = [oid(bagId), explicit([value])];
  if (attributes) {
    parts.push(attributes);
  }
  return sequence(parts);
}

function safeContents(bags: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return sequence(bags);
}

function dataContentInfo(content: forge.asn1.Asn1): forge.asn1.Asn1 {
  return sequence([
    oid(forge.pki.oids.data),
    explicit([octetString(Buffer.from(toDer(content), 'binary'))]),
  ]);
}

function macData(authenticatedSafeDer: string, password: string): forge.asn1.Asn1 {
  const salt = randomBytes(SALT_BYTES);
  const saltBuffer = forge.util.createBuffer(salt.toString('binary'));
  const macKey = forge.pkcs12.generateKey(
    password,
    saltBuffer,
    MAC_ID,
    ITERATIONS,
    32,
    forge.md.sha256.create(),
  );
  const digest = createHmac('sha256', Buffer.from(macKey.getBytes(), 'binary'))
    .update(Buffer.from(authenticatedSafeDer, 'binary'))
    .digest();

  const digestAlgorithm = sequence([oid(forge.pki.oids.sha256), nullValue()]);
  return sequence([
    sequence([digestAlgorithm, octetString(digest)]),
    octetString(salt),
    integer(ITERATIONS),
  ]);
}

function attribute(id: string, value: forge.asn1.Asn1): forge.asn1.Asn1 {
  return sequence([oid(id), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [value])]);
}

function sequence(items: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
}

function explicit(items: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, items);
}

function oid(id: string): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(id).getBytes());
}

function octetString(bytes: Buffer): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes.toString('binary'));
}

function bmpString(text: string): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BMPSTRING, false, text);
}

function integer(value: number): forge.asn1.Asn1 {
  return asn1.create(
    asn1.Class.UNIVERSAL,
    asn1.Type.INTEGER,
    false,
    asn1.integerToDer(value).getBytes(),
  );
}

function nullValue(): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '');
}

function toDer(value: forge.asn1.Asn1): string {
  return asn1.toDer(value).getBytes();
}

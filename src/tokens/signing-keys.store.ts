import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import { calculateJwkThumbprint } from 'jose';
import { DataSource, EntityManager } from 'typeorm';
import { AppConfig } from '../config/app-config';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Held while creating or rotating keys, so replicas starting together make one active key. */
const SIGNING_KEYS_LOCK = 0x6761_746b;

/** The longest TOKEN_TTL the configuration accepts. */
export const MAX_TOKEN_TTL_MS = 60 * 60 * 1000;

/**
 * Added to a retired key's publication: other replicas keep signing with their cached copy of it
 * until their next refresh, and verifiers allow a little clock skew.
 */
export const RETIREMENT_MARGIN_MS = 5 * 60 * 1000;

/** The public half of a signing key, exactly as the JWKS publishes it. */
export interface PublicSigningJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

/** A key that may verify tokens now; only the active one carries its private key. */
export interface StoredSigningKey {
  kid: string;
  publicJwk: PublicSigningJwk;
  active: boolean;
  privateKeyPem: string | null;
  createdAt: Date;
}

export interface RotationResult {
  kid: string;
  retired: string[];
}

interface SigningKeyRow {
  kid: string;
  public_jwk: Record<string, unknown>;
  active: boolean;
  private_key_pem: string | null;
  created_at: Date | string;
}

type Queryable = Pick<EntityManager, 'query'>;

/** Builds the published form from stored fields only, so nothing private can leak through. */
export function toPublicJwk(kid: string, stored: Record<string, unknown>): PublicSigningJwk {
  if (stored.kty !== 'OKP' || stored.crv !== 'Ed25519' || typeof stored.x !== 'string') {
    throw new Error(`signing key ${kid} is not an Ed25519 public key`);
  }
  return { kty: 'OKP', crv: 'Ed25519', x: stored.x, kid, alg: 'EdDSA', use: 'sig' };
}

/** The kid is the key's RFC 7638 thumbprint: unique, and recomputable from the published JWK. */
async function createSigningKey(): Promise<{ publicJwk: PublicSigningJwk; privateKeyPem: string }> {
  const { publicKey, privateKey } = await generateKeyPairAsync('ed25519');
  const exported = publicKey.export({ format: 'jwk' });
  const kid = await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: exported.x });
  return {
    publicJwk: toPublicJwk(kid, exported as Record<string, unknown>),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/*
 * Known limitation: the private key is stored as plain PKCS#8 PEM, so anyone who can read the
 * signing_keys table (or a backup of it) can mint tokens. Encrypting it under a key-encryption
 * key supplied as a secret (or held in a KMS) would close this; no such setting exists yet.
 */
async function insertSigningKey(manager: Queryable): Promise<string> {
  const { publicJwk, privateKeyPem } = await createSigningKey();
  await manager.query(
    `INSERT INTO signing_keys (kid, algorithm, public_jwk, private_key_pem)
     VALUES ($1, 'EdDSA', $2, $3)`,
    [publicJwk.kid, JSON.stringify(publicJwk), privateKeyPem],
  );
  return publicJwk.kid;
}

async function activeKids(manager: Queryable): Promise<string[]> {
  const rows = (await manager.query(
    `SELECT kid FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid`,
  )) as Array<{ kid: string }>;
  return rows.map((row) => row.kid);
}

function withKeysLock<T>(
  dataSource: DataSource,
  work: (manager: EntityManager) => Promise<T>,
): Promise<T> {
  return dataSource.transaction(async (manager) => {
    await manager.query('SELECT pg_advisory_xact_lock($1)', [SIGNING_KEYS_LOCK]);
    return work(manager);
  });
}

/** Returns the kid of the active signing key, creating one when there is none. */
export function ensureActiveSigningKey(dataSource: DataSource): Promise<string> {
  return withKeysLock(dataSource, async (manager) => {
    await deleteUnpublishedSigningKeys(manager);
    const [current] = await activeKids(manager);
    return current ?? insertSigningKey(manager);
  });
}

/**
 * Makes a new key active and retires the previous ones. A retired key stays published (and keeps
 * verifying) for the longest token lifetime the configuration allows plus a margin, so every token
 * it signed expires first. Retired keys past their publication are deleted, private key included.
 */
export async function rotateSigningKeys(
  dataSource: DataSource,
  config: Pick<AppConfig, 'tokenTtlMs'>,
): Promise<RotationResult> {
  const publishForMs = Math.max(config.tokenTtlMs, MAX_TOKEN_TTL_MS) + RETIREMENT_MARGIN_MS;
  return withKeysLock(dataSource, async (manager) => {
    const retired = await activeKids(manager);
    await manager.query(
      `UPDATE signing_keys
       SET retired_at = now(), publish_until = now() + $1 * interval '1 millisecond'
       WHERE retired_at IS NULL`,
      [publishForMs],
    );
    const kid = await insertSigningKey(manager);
    await deleteUnpublishedSigningKeys(manager);
    return { kid, retired };
  });
}

/** Deletes retired keys no token can still need. */
export async function deleteUnpublishedSigningKeys(manager: Queryable): Promise<number> {
  const [, deleted] = (await manager.query(
    `DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND publish_until <= now()`,
  )) as [unknown[], number];
  return deleted ?? 0;
}

/** Active and still-published retired keys, newest first; private keys of the active ones only. */
export async function loadPublishedSigningKeys(manager: Queryable): Promise<StoredSigningKey[]> {
  const rows = (await manager.query(
    `SELECT kid, public_jwk, retired_at IS NULL AS active,
            CASE WHEN retired_at IS NULL THEN private_key_pem END AS private_key_pem, created_at
     FROM signing_keys
     WHERE retired_at IS NULL OR publish_until > now()
     ORDER BY created_at DESC, kid`,
  )) as SigningKeyRow[];
  return rows.map((row) => ({
    kid: row.kid,
    publicJwk: toPublicJwk(row.kid, row.public_jwk),
    active: row.active,
    privateKeyPem: row.private_key_pem,
    createdAt: new Date(row.created_at),
  }));
}

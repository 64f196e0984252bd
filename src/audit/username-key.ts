import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AppConfig } from '../config/app-config';

/**
 * AUDIT_USERNAME_KEY, or in embedded mode a key generated once under DATA_DIR (mode 0600), so
 * that every restart hashes unresolved usernames alike.
 */
export function loadUsernameKey(config: AppConfig): Buffer {
  if (config.auditUsernameKey !== undefined) {
    return Buffer.from(config.auditUsernameKey, 'utf8');
  }
  const keyPath = path.join(config.dataDir, 'audit-username.key');
  try {
    return Buffer.from(fs.readFileSync(keyPath, 'utf8').trim(), 'base64url');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw error;
    }
  }
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  fs.writeFileSync(keyPath, `${key.toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  return key;
}

import { AppConfig } from '../config/app-config';
import { rotateSigningKeys } from '../tokens/signing-keys.store';
import { recordAdminAction } from './admin-actions';
import { Command } from './command';
import { withServiceDatabase } from './database';
import { writeLine } from './output';

async function rotateKeys(_parsed: unknown, config: AppConfig): Promise<void> {
  const rotation = await withServiceDatabase(config, async (connection) => {
    const result = await rotateSigningKeys(connection.dataSource, config);
    await recordAdminAction(connection.dataSource, 'signing_key.rotate', result.kid, {
      retired: result.retired,
    });
    return result;
  });
  writeLine(`signing key ${rotation.kid} is now active`);
  if (rotation.retired.length > 0) {
    writeLine(
      `retired ${rotation.retired.join(', ')}: still published until the tokens they signed expire`,
    );
  }
}

export const KEYS_COMMANDS: Command[] = [
  {
    name: ['keys', 'rotate'],
    usage: 'keys rotate',
    summary: 'make a new token signing key active; running replicas pick it up within seconds',
    arguments: { positionals: [] },
    run: rotateKeys,
  },
];

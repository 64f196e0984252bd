import 'reflect-metadata';
import { startService } from './bootstrap';
import { ConfigError } from './config/config.error';
import { loadConfig } from './config/config.loader';
import { DataDirLockedError } from './database/data-dir-lock';
import { prepareDevelopmentAdmin } from './mtls/development-admin';

/** `npm start`: one clear line and a non-zero exit for any start-up refusal. */
async function main(): Promise<void> {
  try {
    const config = loadConfig();
    await startService(config, {
      installSignalHandlers: true,
      beforeReady: (running) => prepareDevelopmentAdmin(running, config),
    });
  } catch (error) {
    const known = error instanceof ConfigError || error instanceof DataDirLockedError;
    const message = known ? error.message : `start failed: ${(error as Error).message}`;
    process.stderr.write(`gatehouse: ${message}\n`);
    process.exit(1);
  }
}

void main();

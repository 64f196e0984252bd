import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { baseEnvironment, temporaryDirectory } from './gatehouse';

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'dist', 'src', 'main.js');

export interface FinishedProcess {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ServiceChild {
  child: ChildProcess;
  /** Everything written so far, stdout and stderr together. */
  output(): string;
  finished: Promise<FinishedProcess>;
}

/**
 * Spawns the built service with `env` over the test defaults, whatever its log format; a child
 * still running after `timeoutMs` is killed.
 */
export function spawnService(
  env: Record<string, string | undefined>,
  timeoutMs = 90_000,
): ServiceChild {
  const merged: Record<string, string> = baseEnvironment(env.DATA_DIR ?? temporaryDirectory());
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) {
      delete merged[key];
    } else {
      merged[key] = value;
    }
  }
  const child = spawn(process.execPath, [MAIN], {
    env: merged,
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let combined = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    combined += chunk.toString('utf8');
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
    combined += chunk.toString('utf8');
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const finished = new Promise<FinishedProcess>((resolve) => {
    // `close` comes after the pipes have delivered everything the process wrote.
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, output: () => combined, finished };
}

/** Runs the service until it exits on its own, as a start refused by configuration does. */
export function runUntilExit(
  env: Record<string, string | undefined>,
  timeoutMs = 90_000,
): Promise<FinishedProcess> {
  return spawnService(env, timeoutMs).finished;
}

import { spawn } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');
const DEMO_TIMEOUT_MS = 240_000;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const population = require('../demo/population') as {
  demoUsers(count: number): Array<{ username: string; password: string }>;
  comboList(
    users: Array<{ username: string; password: string }>,
    lines: number,
    validPairs: number,
  ): Array<{ username: string; password: string; valid: boolean }>;
};

interface DemoRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A small, quick demo run; the service, database and certificates are the demo's own. */
function runDemo(extra: string[]): Promise<DemoRun> {
  const small = ['--users', '6', '--duration', '6', '--attack-rate', '25', '--sources', '12'];
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'demo.js'), ...small, ...extra], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('demo combo list', () => {
  it('puts each valid pair first among its user lines, in the first fifth of the list', () => {
    const users = population.demoUsers(50);
    const entries = population.comboList(users, 2000, 5);
    const valid = entries.filter((entry) => entry.valid);

    expect(valid).toHaveLength(5);
    for (const pair of valid) {
      const user = users.find((candidate) => candidate.username === pair.username)!;
      expect(pair.password).toBe(user.password);
      const first = entries.findIndex((entry) => entry.username === pair.username);
      expect(entries[first]).toBe(pair);
      expect(first).toBeLessThan(400);
    }
    const wrongForOurUsers = entries.filter(
      (entry) => !entry.valid && users.some((user) => user.username === entry.username),
    );
    expect(
      wrongForOurUsers.every((entry) => !users.some((u) => u.password === entry.password)),
    ).toBe(true);
  });

  it('is the same list on every run', () => {
    const users = population.demoUsers(10);
    expect(population.comboList(users, 300, 2)).toEqual(population.comboList(users, 300, 2));
  });
});

describe('npm run demo', () => {
  it(
    'exits 0 when mutual TLS and the limits keep the attacker out',
    async () => {
      const run = await runDemo([]);

      expect(run.stdout).toContain('ok    attacker logins: 0 (must be 0)');
      expect(run.stdout).toMatch(/ok {4}audit sum\(count\) (\d+) = \1 sent/);
      expect(run.stdout).toContain('The defences held.');
      expect(run.code).toBe(0);
    },
    DEMO_TIMEOUT_MS,
  );

  it(
    'exits non-zero with --no-defences, when the valid pairs get in',
    async () => {
      const run = await runDemo(['--no-defences']);

      expect(run.stdout).toMatch(/Accounts the attacker got into: [1-5] /);
      expect(run.stdout).toContain('FAIL  attacker logins');
      expect(run.stdout).toMatch(/ok {4}audit sum\(count\) (\d+) = \1 sent/);
      expect(run.code).toBe(1);
    },
    DEMO_TIMEOUT_MS,
  );
});

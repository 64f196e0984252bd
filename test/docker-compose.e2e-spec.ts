import { spawnSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { COMPOSE_PRESET } from '../scripts/render-nginx';
import { loadConfig } from '../src/config/config.loader';
import { assertProductionSafety } from '../src/config/production-guard';
import { parseTrustedProxies } from '../src/mtls/client-ip';

const ROOT = join(__dirname, '..');
const COMPOSE_FILE = join(ROOT, 'docker', 'compose.yaml');
const DOCKERFILE = join(ROOT, 'docker', 'Dockerfile');

interface ComposeService {
  image?: string;
  command?: string[] | string;
  environment?: Record<string, string>;
  volumes?: string[];
  configs?: Array<{ source: string; target: string }>;
  depends_on?: Record<string, { condition: string }>;
  networks?: Record<string, { aliases?: string[]; ipv4_address?: string }> | string[];
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  networks: Record<string, { ipam: { config: Array<{ subnet: string }> } }>;
  configs: Record<string, { content: string }>;
}

/** js-yaml comes with the dependencies (no types of its own here). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require('js-yaml') as { load(text: string): unknown };

/** YAML merge keys (`<<: *anchor`), which compose applies and this js-yaml leaves as keys. */
function resolveMerges(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(resolveMerges);
  }
  if (value === null || typeof value !== 'object') {
    return value;
  }
  const { '<<': merged, ...own } = value as Record<string, unknown>;
  const sources = merged === undefined ? [] : Array.isArray(merged) ? merged : [merged];
  const result: Record<string, unknown> = {};
  for (const source of sources) {
    Object.assign(result, resolveMerges(source));
  }
  for (const [key, child] of Object.entries(own)) {
    result[key] = resolveMerges(child);
  }
  return result;
}

/** Compose's interpolation for what this file uses: `${NAME:-default}` and `$$`. */
function interpolateDefaults(text: string): string {
  return text.replace(/(?<!\$)\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}/g, '$1').replace(/\$\$/g, '$');
}

function loadCompose(): ComposeFile {
  return resolveMerges(
    yaml.load(interpolateDefaults(readFileSync(COMPOSE_FILE, 'utf8'))),
  ) as ComposeFile;
}

const REPLICAS = ['gatehouse-1', 'gatehouse-2'];

describe('docker/compose.yaml', () => {
  const compose = loadCompose();
  const nginx = compose.services.nginx;
  const nginxAddress = (nginx.networks as Record<string, { ipv4_address: string }>).gatehouse
    .ipv4_address;

  it('defines the database, Redis, the one-shot jobs, two replicas and nginx', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['certs', 'gatehouse-1', 'gatehouse-2', 'migrate', 'nginx', 'postgres', 'redis'].sort(),
    );
  });

  it('runs the replicas in proxy mode, trusting only nginx at its fixed address', () => {
    const subnet = compose.networks.gatehouse.ipam.config[0].subnet;
    expect(parseTrustedProxies(subnet).contains(nginxAddress)).toBe(true);
    for (const name of REPLICAS) {
      const environment = compose.services[name].environment!;
      expect(environment.MTLS_MODE).toBe('proxy');
      expect(environment.TRUSTED_PROXIES).toBe(nginxAddress);
      expect(environment.MIGRATE_ON_START).toBe('false');
      expect(String(compose.services[name].command)).toContain('TRUSTED_PROXY_CERTS=');
    }
  });

  it('gives both replicas the network alias nginx proxies to', () => {
    for (const name of REPLICAS) {
      const networks = compose.services[name].networks as Record<string, { aliases: string[] }>;
      expect(networks.gatehouse.aliases).toContain(COMPOSE_PRESET.UPSTREAM_NAME);
    }
    expect(COMPOSE_PRESET.UPSTREAM).toBe(`${COMPOSE_PRESET.UPSTREAM_NAME}:8443`);
  });

  it('keeps Redis from evicting limiter counters', () => {
    const command = compose.services.redis.command as string[];
    expect(command[command.indexOf('--maxmemory-policy') + 1]).toBe('noeviction');
  });

  it('migrates once, as the owner role, before any replica starts', () => {
    const migrate = compose.services.migrate;
    expect(migrate.command).toEqual(['node', 'bin/gatehouse.js', 'migrate']);
    expect(migrate.environment!.DATABASE_ADMIN_URL).toMatch(/^postgres:\/\/gatehouse_owner:/);
    expect(migrate.environment!.DATABASE_URL).toMatch(/^postgres:\/\/gatehouse:/);
    expect(new URL(migrate.environment!.DATABASE_ADMIN_URL).host).toBe('postgres');
    for (const name of REPLICAS) {
      expect(compose.services[name].depends_on!.migrate.condition).toBe(
        'service_completed_successfully',
      );
    }
  });

  it('mounts the rendered configuration where the compose preset points', () => {
    const targets = nginx.volumes!.map((volume) => volume.split(':')[1]);
    expect(targets).toEqual(
      expect.arrayContaining([
        '/etc/nginx/nginx.conf',
        COMPOSE_PRESET.INCLUDE_DIR,
        '/etc/nginx/certs',
      ]),
    );
    for (const key of [
      'SERVER_CERT',
      'SERVER_KEY',
      'CLIENT_CA',
      'UPSTREAM_CA',
      'PROXY_CERT',
      'PROXY_KEY',
    ]) {
      expect(COMPOSE_PRESET[key]).toMatch(/^\/etc\/nginx\/certs\/[a-z-]+\.(crt|key)$/);
    }
  });

  describe('the certs job', () => {
    let directory: string;

    beforeAll(() => {
      directory = mkdtempSync(join(tmpdir(), 'gatehouse-compose-'));
    });

    afterAll(() => {
      rmSync(directory, { recursive: true, force: true });
    });

    /** Runs `certs init` and the compose-certs script, with the container paths moved here. */
    function runCertsJob(): { tls: string; nginxTls: string; output: string } {
      const dataDir = join(directory, 'data');
      const tls = join(directory, 'tls');
      const nginxTls = join(directory, 'nginx-tls');
      mkdirSync(tls, { recursive: true });
      mkdirSync(nginxTls, { recursive: true });
      const init = spawnSync(
        process.execPath,
        [join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'certs', 'init'],
        {
          env: { PATH: process.env.PATH, NODE_ENV: 'development', DATA_DIR: dataDir },
          encoding: 'utf8',
        },
      );
      expect(init.stderr).toBe('');
      expect(init.status).toBe(0);

      const script = compose.configs['compose-certs'].content
        .replace(
          "'/app/dist/src/pki/index.js'",
          JSON.stringify(join(ROOT, 'dist', 'src', 'pki', 'index.js')),
        )
        .replace("'/var/lib/gatehouse/pki'", JSON.stringify(join(dataDir, 'pki')))
        .replace("'/etc/gatehouse/tls'", JSON.stringify(tls))
        .replace("'/etc/gatehouse/nginx-tls'", JSON.stringify(nginxTls));
      const scriptPath = join(directory, 'compose-certs.js');
      writeFileSync(scriptPath, script);
      const run = spawnSync(process.execPath, [scriptPath], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      return { tls, nginxTls, output: run.stdout };
    }

    it('writes what the replicas and nginx read; the server certificate names gatehouse', () => {
      const { tls, nginxTls } = runCertsJob();
      const replica = compose.services['gatehouse-1'];
      for (const key of ['TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_CA_FILE']) {
        expect(replica.environment![key]).toMatch(/^\/etc\/gatehouse\/tls\//);
        expect(existsSync(join(tls, basename(replica.environment![key])))).toBe(true);
      }
      for (const key of [
        'SERVER_CERT',
        'SERVER_KEY',
        'CLIENT_CA',
        'UPSTREAM_CA',
        'PROXY_CERT',
        'PROXY_KEY',
      ]) {
        expect(existsSync(join(nginxTls, basename(COMPOSE_PRESET[key])))).toBe(true);
      }

      const ca = new X509Certificate(readFileSync(join(tls, 'ca.crt')));
      const server = new X509Certificate(readFileSync(join(tls, 'server.crt')));
      expect(server.subjectAltName).toContain('DNS:gatehouse');
      expect(server.verify(ca.publicKey)).toBe(true);
      const proxy = new X509Certificate(readFileSync(join(nginxTls, 'proxy.crt')));
      expect(proxy.verify(ca.publicKey)).toBe(true);
      expect(readFileSync(join(tls, 'proxy.sha256'), 'utf8')).toBe(
        createHash('sha256').update(proxy.raw).digest('hex'),
      );
      expect(String(replica.command)).toContain('/etc/gatehouse/tls/proxy.sha256');
    });

    it('gives the replicas a configuration the production guard accepts', () => {
      const tls = join(directory, 'tls');
      const replica = compose.services['gatehouse-1'].environment!;
      const environment: Record<string, string> = { NODE_ENV: 'production', DATA_DIR: directory };
      for (const [key, value] of Object.entries(replica)) {
        environment[key] = value.replace('/etc/gatehouse/tls', tls);
      }
      environment.TRUSTED_PROXY_CERTS = readFileSync(join(tls, 'proxy.sha256'), 'utf8');

      const config = loadConfig(environment);
      expect(() => assertProductionSafety(config)).not.toThrow();
      expect(config.trustedProxyCerts).toMatch(/^[0-9a-f]{64}$/);
      expect(config.limiterStore).toBe('redis');
    });

    it('keeps the certificates on a second run', () => {
      const before = readFileSync(join(directory, 'tls', 'proxy.sha256'), 'utf8');
      const { tls, output } = runCertsJob();
      expect(output).toContain('kept');
      expect(readFileSync(join(tls, 'proxy.sha256'), 'utf8')).toBe(before);
    });
  });
});

describe('docker/Dockerfile', () => {
  const dockerfile = readFileSync(DOCKERFILE, 'utf8');

  it('builds on node:22-bookworm-slim and runs unprivileged with production dependencies', () => {
    expect(dockerfile.match(/^FROM node:22-bookworm-slim AS \w+$/gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/NODE_ENV=production/);
    expect(dockerfile).toMatch(/HOST=0\.0\.0\.0/);
    expect(dockerfile).toMatch(/MANAGEMENT_HOST=0\.0\.0\.0/);
  });

  it('checks health on the management port and starts the built service', () => {
    expect(dockerfile).toMatch(
      /^HEALTHCHECK .*\\\n\s+CMD \["node", "-e", ".*fetch\(.*\/health\/ready/m,
    );
    expect(dockerfile.trimEnd().split('\n').pop()).toBe('CMD ["node", "dist/src/main.js"]');
  });
});

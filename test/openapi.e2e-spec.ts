import * as fs from 'node:fs';
import * as path from 'node:path';
import { GatehouseProcess, startGatehouse } from './support/gatehouse';
import { sendRaw } from './support/login-requests';

const COMMITTED = path.resolve(__dirname, '..', 'docs', 'openapi.json');

interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, { properties?: Record<string, { enum?: string[] }> }> };
}

describe('OpenAPI document', () => {
  let service: GatehouseProcess;
  let served: OpenApiDocument;

  beforeAll(async () => {
    service = await startGatehouse({ env: { MTLS_MODE: 'off' }, timeoutMs: 150_000 });
    const response = await sendRaw(service.url, { method: 'GET', path: '/docs' });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toContain('application/json');
    served = JSON.parse(response.body) as OpenApiDocument;
  }, 180_000);

  afterAll(async () => {
    await service?.stop();
  });

  it('matches docs/openapi.json (regenerate with `node scripts/openapi.js`)', () => {
    const committed = JSON.parse(fs.readFileSync(COMMITTED, 'utf8')) as OpenApiDocument;
    expect(served).toEqual(committed);
  });

  it('serves the same document at /docs/json', async () => {
    const response = await sendRaw(service.url, { method: 'GET', path: '/docs/json' });
    expect(JSON.parse(response.body)).toEqual(served);
  });

  it('describes the contract endpoints with their problem+json errors', () => {
    expect(Object.keys(served.paths)).toEqual(
      expect.arrayContaining(['/auth/login', '/auth/certificate', '/auth/me', '/auth/logout']),
    );
    expect(Object.keys(served.paths)).toContain('/.well-known/jwks.json');
    const login = served.paths['/auth/login'].post;
    for (const status of ['200', '400', '401', '429', '503']) {
      expect(login.responses).toHaveProperty(status);
    }
    expect(served.paths['/auth/me'].get.responses).toHaveProperty('401');
    expect(served.components.schemas.Problem.properties?.error.enum).toEqual(
      expect.arrayContaining(['invalid_credentials', 'invalid_token', 'too_many_attempts']),
    );
  });
});

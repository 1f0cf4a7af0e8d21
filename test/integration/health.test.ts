import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, PG_ADMIN_URL } from '../helpers/env.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { describeOnBackends } from '../helpers/fixture.js';

describeOnBackends('health and static pages (%s)', (fx) => {
  it('answers 200 {"status":"ok"} while the database answers', async () => {
    const response = await fetch(`${fx.server.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('serves the stylesheet and points / at discovery', async () => {
    const css = await fetch(`${fx.server.url}/static/latchkey.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toContain('text/css');
    const root = await fetch(`${fx.server.url}/`, { redirect: 'manual' });
    expect(root.headers.get('location')).toBe('/o/.well-known/openid-configuration');
  });
});

describe.skipIf(!BACKENDS.includes('pg'))('health when the database is gone (pg)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('pg');
  });
  afterAll(async () => server?.stop());

  it('answers 503 once the database stops answering', async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    // Really take the database away: drop it, terminating Latchkey's connections.
    const name = new URL(server.db.url).pathname.slice(1);
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
    await admin.end();
    const response = await fetch(`${server.url}/health`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ status: 'unavailable' });
  });
});

describe('the periodic sweeper', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { SWEEP_INTERVAL_SECONDS: '1' });
  });
  afterAll(async () => server?.stop());

  it('deletes expired rows on its own and keeps live ones', async () => {
    const row = (id: string, expiresAt: number) => ({ model: 'AccessToken', id, payload: '{}', expires_at: expiresAt });
    await server.latchkey.storage.knex('oidc_payloads').insert([row('expired', Date.now() - 1000), row('live', Date.now() + 3_600_000)]);
    const ids = async () => (await server.latchkey.storage.knex('oidc_payloads').pluck('id')) as string[];
    for (let i = 0; i < 50 && (await ids()).includes('expired'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await ids()).toEqual(['live']);
  });
});

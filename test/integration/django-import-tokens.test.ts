import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ImportReport } from '../../src/core/import/import-report.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { seedDjangoSite, type DjangoApplication, type DjangoSite, type DjangoToken } from '../helpers/django.js';
import { runProcess, type ProcessResult } from '../helpers/process.js';

/**
 * `import django --tokens` against tokens real django-oauth-toolkit 1.7 issued
 * (test/fixtures/django/seed.py: alice `read write`, judy `read` with an expired access
 * token, root's refresh token revoked), through the compiled CLI while the server runs; then
 * the apps go on using them at Latchkey as DOT's resource servers and the mobile app would.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const describeResult = (r: ProcessResult) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
const RESOURCE = 'https://site.example.com/api/';

describeOnBackends('import django --tokens (%s)', (fx) => {
  let site: DjangoSite;
  const cli = (...args: string[]) => runProcess(process.execPath, [MAIN, ...args], { env: { ...process.env, DATABASE_URL: fx.server.db.url, BCRYPT_COST: '10' }, cwd: ROOT });
  async function runImport(...more: string[]): Promise<ImportReport> {
    const r = await cli('import', 'django', '--from', site.from, '--user-table', site.manifest.user_table, '--json', ...more);
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stderr, describeResult(r)).toBe('');
    return JSON.parse(r.stdout) as ImportReport;
  }
  const mobile = (): DjangoApplication => {
    const app = site.manifest.applications.find((a) => a.grant === 'password');
    if (!app) throw new Error('no password application in the fixture');
    return app;
  };
  const tokenOf = (username: string): DjangoToken => {
    const token = site.manifest.tokens.find((t) => t.username === username);
    if (!token) throw new Error(`no token of ${username} in the fixture`);
    return token;
  };
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  const asMobile = () => basic(mobile().client_id, mobile().client_secret as string);
  const introspect = (token: string) => fx.api('POST', '/o/token/introspection', { authorization: asMobile(), form: { token } });
  const refresh = (token: string, authorization = asMobile()) => fx.api('POST', '/o/token', { authorization, form: { grant_type: 'refresh_token', refresh_token: token } });
  const userId = async (username: string) => String((await fx.server.latchkey.storage.users.findByLogin(username))?.id);
  const payloadRows = () => fx.server.latchkey.storage.knex('oidc_payloads').select('*') as Promise<Array<Record<string, unknown>>>;
  const dotValues = () => [...site.manifest.tokens.flatMap((t) => [t.access_token, t.refresh_token]), site.manifest.revoked_refresh_token];

  beforeAll(async () => {
    site = await seedDjangoSite(fx.backend);
  });
  afterAll(async () => {
    await site?.drop();
  });

  it('without --tokens the tokens are counted as not imported; --dry-run --tokens reports them and changes nothing', async () => {
    const before = (await payloadRows()).length;
    const plain = await runImport('--dry-run');
    expect(plain.not_imported).toMatchObject({ 'access tokens': 2, 'refresh tokens': 3 });
    expect(plain).not.toHaveProperty('access_tokens');
    const dry = await runImport('--dry-run', '--tokens', '--resource', RESOURCE);
    expect(dry.dry_run).toBe(true);
    expect(dry.not_imported).not.toHaveProperty('access tokens');
    expect(dry.access_tokens).toEqual({ found: 2, created: 1, updated: 0, unchanged: 0, skipped: 1 });
    expect(dry.refresh_tokens).toEqual({ found: 3, created: 2, updated: 0, unchanged: 0, skipped: 1 });
    expect((await payloadRows()).length).toBe(before);
    expect(await fx.server.latchkey.services.resourceService.findByIdentifier(RESOURCE)).toBeUndefined();
    // Nothing was kept: not even the client that would ask about the token.
    expect(await introspect(tokenOf('alice').access_token)).toMatchObject({ status: 401, json: { error: 'invalid_client' } });
  });

  it('imports the live tokens, skips the expired and the revoked one with why, and makes the Django resource with DOT\'s scopes', async () => {
    const report = await runImport('--tokens', '--resource', RESOURCE, '--scope', 'admin:site');
    expect(report.errors).toEqual([]);
    expect(report.access_tokens).toEqual({ found: 2, created: 1, updated: 0, unchanged: 0, skipped: 1 });
    expect(report.refresh_tokens).toEqual({ found: 3, created: 2, updated: 0, unchanged: 0, skipped: 1 });
    expect(report.django_resource).toEqual({ identifier: RESOURCE, scopes: ['read', 'write', 'admin:site'], outcome: 'created' });
    const reasons = report.skipped.filter((s) => s.kind === 'access_token' || s.kind === 'refresh_token').map((s) => [s.kind, s.reason]);
    expect(reasons.sort()).toEqual([['access_token', 'expired'], ['refresh_token', 'revoked']]);
    // The report names rows, never their values.
    for (const value of dotValues()) expect(JSON.stringify(report)).not.toContain(value);
    const resource = await fx.server.latchkey.services.resourceService.findByIdentifier(RESOURCE);
    expect(resource).toMatchObject({ scopes: ['read', 'write', 'admin:site'], accessTokenFormat: 'opaque' });
  });

  it('no DOT token value is stored in clear: not as an id, not in a payload', async () => {
    const rows = await payloadRows();
    expect(rows.filter((r) => r['model'] === 'AccessToken').length).toBeGreaterThanOrEqual(1);
    expect(rows.filter((r) => r['model'] === 'RefreshToken').length).toBeGreaterThanOrEqual(2);
    const dump = JSON.stringify(rows);
    for (const value of dotValues()) expect(dump).not.toContain(value);
  });

  it('the access token DOT issued introspects as active, with its scopes, user, client and the Django resource as audience', async () => {
    const alice = tokenOf('alice');
    const answer = await introspect(alice.access_token);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json).toMatchObject({ active: true, client_id: mobile().client_id, sub: await userId('alice'), scope: 'read write', aud: RESOURCE, token_type: 'Bearer' });
    // Another client learns nothing about it.
    const batch = site.manifest.applications.find((a) => a.grant === 'client-credentials');
    const foreign = await fx.api('POST', '/o/token/introspection', { authorization: basic(batch?.client_id ?? '', batch?.client_secret ?? ''), form: { token: alice.access_token } });
    expect(foreign.json).toEqual({ active: false });
    // A token for the Django resource, without openid: not one for userinfo, nor for our REST API.
    const userinfo = await fx.api('GET', '/o/me', { token: alice.access_token });
    expect(userinfo.status).toBe(403);
    expect(userinfo.json['error']).toBe('insufficient_scope');
    const rest = await fx.api('GET', '/api/users/', { token: alice.access_token });
    expect(rest.status).toBe(401);
  });

  it('the expired access token and the revoked refresh token were not brought and do not work', async () => {
    expect((await introspect(site.manifest.expired_access_token)).json).toEqual({ active: false });
    const revoked = await refresh(site.manifest.revoked_refresh_token);
    expect(revoked.status).toBe(400);
    expect(revoked.json['error']).toBe('invalid_grant');
  });

  it("the refresh token DOT issued refreshes with the DOT client's credentials into Latchkey's tokens with the same scopes; the old one then fails", async () => {
    const alice = tokenOf('alice');
    // Only by the client it was issued to.
    const spa = site.manifest.applications.find((a) => a.name === 'Web SPA');
    const stranger = await fx.api('POST', '/o/token', { form: { grant_type: 'refresh_token', refresh_token: alice.refresh_token, client_id: spa?.client_id ?? '' } });
    expect(stranger.status).toBe(400);
    expect(stranger.json['error']).toBe('invalid_grant');
    const wrongSecret = await refresh(alice.refresh_token, basic(mobile().client_id, 'not the secret'));
    expect(wrongSecret.status).toBe(401);

    const rotated = await refresh(alice.refresh_token);
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.json).toMatchObject({ token_type: 'Bearer', scope: 'read write', access_token: expect.any(String), refresh_token: expect.any(String) });
    expect(rotated.json['refresh_token']).not.toBe(alice.refresh_token);
    expect(rotated.json['access_token']).not.toBe(alice.access_token);
    const fresh = await introspect(rotated.json['access_token'] as string);
    expect(fresh.json).toMatchObject({ active: true, scope: 'read write', aud: RESOURCE, sub: await userId('alice'), client_id: mobile().client_id });

    // Rotation: DOT's value is spent; presenting it again is a replay, which ends the grant.
    const replay = await refresh(alice.refresh_token);
    expect(replay.status).toBe(400);
    expect(replay.json['error']).toBe('invalid_grant');
    expect((await introspect(rotated.json['access_token'] as string)).json).toEqual({ active: false });
    expect((await refresh(rotated.json['refresh_token'] as string)).json['error']).toBe('invalid_grant');
  });

  it("the imported password app gets new tokens for DOT's scopes, for the Django resource only; nothing else gets them", async () => {
    const alicePassword = site.manifest.users.find((u) => u.username === 'alice')?.password as string;
    const grant = (scope: string, authorization = asMobile(), extra: Record<string, string> = {}) =>
      fx.api('POST', '/o/token', { authorization, form: { grant_type: 'password', username: 'alice', password: alicePassword, scope, ...extra } });
    const ok = await grant('read write');
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json).toMatchObject({ token_type: 'Bearer', scope: 'read write', refresh_token: expect.any(String) });
    expect((await introspect(ok.json['access_token'] as string)).json).toMatchObject({ active: true, scope: 'read write', aud: RESOURCE, sub: await userId('alice') });
    const refreshed = await refresh(ok.json['refresh_token'] as string);
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(refreshed.json).toMatchObject({ scope: 'read write' });
    expect((await introspect(refreshed.json['access_token'] as string)).json).toMatchObject({ active: true, scope: 'read write', aud: RESOURCE });
    // Never our REST API's scopes, nor a scope the Django resource does not offer.
    for (const scope of ['read users:read', 'read admin', 'delete']) {
      const refused = await grant(scope);
      expect(refused.status, scope).toBe(400);
      expect(refused.json['error']).toBe('invalid_scope');
    }
    // A client that did not come from Django gets no DOT scope.
    const firstParty = await fx.api('POST', '/o/token', { form: { grant_type: 'password', client_id: 'latchkey-first-party', username: 'alice', password: alicePassword, scope: 'read' } });
    expect(firstParty.status, firstParty.text).toBe(400);
    expect(firstParty.json['error']).toBe('invalid_scope');
  });

  it("a deactivated user's imported token stops working at once", async () => {
    const judy = tokenOf('judy');
    await fx.server.latchkey.storage.users.setActive(Number(await userId('judy')), false);
    const refused = await refresh(judy.refresh_token);
    expect(refused.status).toBe(400);
    expect(refused.json['error']).toBe('invalid_grant');
  });

  it('a second run brings nothing twice and never brings back a token used or revoked here', async () => {
    const again = await runImport('--tokens', '--resource', RESOURCE);
    expect(again.errors).toEqual([]);
    expect(again.access_tokens).toEqual({ found: 2, created: 0, updated: 0, unchanged: 1, skipped: 1 });
    expect(again.refresh_tokens).toEqual({ found: 3, created: 0, updated: 0, unchanged: 2, skipped: 1 });
    // admin:site came from the first run's --scope: kept, never narrowed.
    expect(again.django_resource).toEqual({ identifier: RESOURCE, scopes: ['read', 'write', 'admin:site'], outcome: 'unchanged' });
    // Alice's DOT refresh token was spent here: still spent.
    expect((await refresh(tokenOf('alice').refresh_token)).json['error']).toBe('invalid_grant');
  });

  it('a resource made in Latchkey is not taken over by the import', async () => {
    await fx.server.latchkey.services.resourceService.create({ identifier: 'https://other.example.com/', name: 'Other', scopes: ['read'] });
    const r = await cli('import', 'django', '--from', site.from, '--user-table', site.manifest.user_table, '--tokens', '--resource', 'https://other.example.com/');
    expect(r.code, describeResult(r)).not.toBe(0);
    expect(r.stderr).toMatch(/was made in Latchkey, not by this import/);
  });
});

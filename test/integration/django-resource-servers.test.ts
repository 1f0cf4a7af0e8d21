import path from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ImportReport } from '../../src/core/import/import-report.js';
import { UserAgent } from '../helpers/browserless.js';
import { apiLogin, describeOnBackends } from '../helpers/fixture.js';
import { seedDjangoSite, type DjangoApplication, type DjangoSite } from '../helpers/django.js';
import { runProcess, type ProcessResult } from '../helpers/process.js';
import { authorize, makeClient, makeUser } from '../helpers/rp.js';

/**
 * Issue 16's last compatibility gaps, against a site real django-oauth-toolkit 1.7 seeded
 * (test/fixtures/django/seed.py):
 * - a resource server registered as a client introspects the tokens issued to the other apps
 *   for its API (DOT's usual set-up): `import django --resource-server <client_id>`, the
 *   client metadata `resource_server_for` (REST, CLI), and everything it must not see;
 * - an application imported from Django asking for DOT's scopes in the code flow without
 *   `resource=` gets a token for the Django resource, as its DOT apps did.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const RESOURCE = 'https://site.example.com/api/';
const describeResult = (r: ProcessResult) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

describeOnBackends('Django resource servers and DOT scopes in the code flow (%s)', (fx) => {
  let site: DjangoSite;
  let report: ImportReport;
  let staffToken: string;
  const cli = (...args: string[]) => runProcess(process.execPath, [MAIN, ...args], { env: { ...process.env, DATABASE_URL: fx.server.db.url, BCRYPT_COST: '10' }, cwd: ROOT });
  const app = (name: string): DjangoApplication => {
    const found = site.manifest.applications.find((a) => a.name === name);
    if (!found) throw new Error(`no application ${name} in the fixture`);
    return found;
  };
  const credentials = (name: string) => basic(app(name).client_id, app(name).client_secret ?? '');
  const passwordOf = (username: string) => site.manifest.users.find((u) => u.username === username)?.password as string;
  const introspectAs = (authorization: string, token: string) => fx.api('POST', '/o/token/introspection', { authorization, form: { token } });
  const passwordGrant = (username: string, scope: string) =>
    fx.api('POST', '/o/token', { authorization: credentials('Legacy Mobile'), form: { grant_type: 'password', username, password: passwordOf(username), scope } });

  beforeAll(async () => {
    site = await seedDjangoSite(fx.backend);
    const r = await cli(
      'import', 'django', '--from', site.from, '--user-table', site.manifest.user_table, '--json',
      '--tokens', '--resource', RESOURCE,
      '--resource-server', app('Nightly Batch').client_id,
      '--resource-server', app('Web SPA').client_id,
      '--resource-server', 'no-such-application',
    );
    expect(r.code, describeResult(r)).toBe(0);
    report = JSON.parse(r.stdout) as ImportReport;
    const staff = await makeUser(fx.server.latchkey, { isStaff: true });
    staffToken = (await apiLogin(fx.api, staff.username)).access;
  }, 120_000);
  afterAll(async () => {
    await site?.drop();
  });

  it('marks the confidential application as the Django resource\'s resource server and reports the others as skipped, with why', async () => {
    expect(report.errors).toEqual([]);
    expect(report.resource_servers).toEqual([app('Nightly Batch').client_id]);
    const skipped = report.skipped.filter((s) => s.kind === 'resource_server').map((s) => [s.source_id, s.reason]);
    expect(skipped.sort()).toEqual([[app('Web SPA').client_id, 'public_client'], ['no-such-application', 'unknown_application']].sort());
    const batch = await fx.api('GET', `/api/clients/${encodeURIComponent(app('Nightly Batch').client_id)}/`, { token: staffToken });
    expect(batch.json['resource_server_for']).toEqual([RESOURCE]);
    // A second run keeps it (it is Latchkey's, not Django's), also without --resource-server.
    const again = await cli('import', 'django', '--from', site.from, '--user-table', site.manifest.user_table, '--json', '--tokens', '--resource', RESOURCE);
    expect(again.code, describeResult(again)).toBe(0);
    const after = await fx.api('GET', `/api/clients/${encodeURIComponent(app('Nightly Batch').client_id)}/`, { token: staffToken });
    expect(after.json['resource_server_for']).toEqual([RESOURCE]);
    // --resource-server goes with --tokens.
    const alone = await cli('import', 'django', '--from', site.from, '--resource-server', app('Nightly Batch').client_id);
    expect(alone.code).toBe(2);
    expect(alone.stderr.trim().split('\n')).toHaveLength(1);
    expect(alone.stderr).toMatch(/--resource-server go with --tokens/);
  });

  it('the resource server introspects the user tokens issued to another app for its API: those DOT issued and new ones', async () => {
    const dot = site.manifest.tokens.find((t) => t.username === 'alice');
    const imported = await introspectAs(credentials('Nightly Batch'), dot?.access_token ?? '');
    expect(imported.status, imported.text).toBe(200);
    expect(imported.json).toMatchObject({ active: true, client_id: app('Legacy Mobile').client_id, username: 'alice', scope: 'read write', aud: RESOURCE });

    const fresh = await passwordGrant('bob', 'read');
    expect(fresh.status, fresh.text).toBe(200);
    const seen = await introspectAs(credentials('Nightly Batch'), String(fresh.json['access_token']));
    expect(seen.json).toMatchObject({ active: true, username: 'bob', scope: 'read', aud: RESOURCE });
  });

  it('learns nothing about sign-in tokens, refresh tokens, tokens for another API, or a deactivated person\'s', async () => {
    const asBatch = (token: string) => introspectAs(credentials('Nightly Batch'), token);
    // A sign-in token of the mobile app (no audience): its own client sees it, the resource server does not.
    const signIn = await passwordGrant('alice', 'profile email');
    expect(signIn.status, signIn.text).toBe(200);
    const access = String(signIn.json['access_token']);
    expect((await introspectAs(credentials('Legacy Mobile'), access)).json).toMatchObject({ active: true });
    expect((await asBatch(access)).json).toEqual({ active: false });
    // A refresh token, even one for the resource server's own API.
    const forApi = await passwordGrant('alice', 'read write');
    expect((await asBatch(String(forApi.json['refresh_token']))).json).toEqual({ active: false });
    expect((await asBatch(String(forApi.json['access_token']))).json).toMatchObject({ active: true });
    // A token for another API resource.
    await fx.server.latchkey.services.resourceService.create({ identifier: 'https://other.example.com/', name: 'Other API', scopes: ['read'], accessTokenFormat: 'opaque' });
    const machine = await makeClient(fx.server.latchkey, { grantTypes: ['client_credentials'], redirectUris: [] });
    const other = await fx.api('POST', '/o/token', { authorization: basic(machine.client.clientId, machine.clientSecret ?? ''), form: { grant_type: 'client_credentials', resource: 'https://other.example.com/', scope: 'read' } });
    expect(other.status, other.text).toBe(200);
    expect((await introspectAs(basic(machine.client.clientId, machine.clientSecret ?? ''), String(other.json['access_token']))).json).toMatchObject({ active: true });
    expect((await asBatch(String(other.json['access_token']))).json).toEqual({ active: false });
    // A client that is no resource server learns nothing about tokens for the Django resource.
    expect((await introspectAs(basic(machine.client.clientId, machine.clientSecret ?? ''), String(forApi.json['access_token']))).json).toEqual({ active: false });
    // A deactivated person's token stops being active at once.
    const carol = await passwordGrant('carol', 'read');
    expect((await asBatch(String(carol.json['access_token']))).json).toMatchObject({ active: true });
    const carolId = (await fx.server.latchkey.storage.users.findByLogin('carol'))?.id;
    await fx.server.latchkey.storage.users.setActive(Number(carolId), false);
    expect((await asBatch(String(carol.json['access_token']))).json).toEqual({ active: false });
  });

  it('staff make a client a resource server over REST and the CLI: of registered resources only, never the built-in API, never a public client', async () => {
    const dot = site.manifest.tokens.find((t) => t.username === 'alice');
    const created = await fx.api('POST', '/api/clients/', {
      token: staffToken,
      json: { client_name: 'Orders API', grant_types: ['client_credentials'], resource_server_for: [RESOURCE] },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.json['resource_server_for']).toEqual([RESOURCE]);
    const orders = basic(String(created.json['client_id']), String(created.json['client_secret']));
    expect((await introspectAs(orders, dot?.access_token ?? '')).json).toMatchObject({ active: true, username: 'alice' });
    // Taken away: it sees nothing again.
    const cleared = await fx.api('PATCH', `/api/clients/${String(created.json['client_id'])}/`, { token: staffToken, json: { resource_server_for: [] } });
    expect(cleared.status, cleared.text).toBe(200);
    expect(cleared.json['resource_server_for']).toEqual([]);
    expect((await introspectAs(orders, dot?.access_token ?? '')).json).toEqual({ active: false });

    const refused: Array<[string, Record<string, unknown>, RegExp]> = [
      ['an unregistered resource', { resource_server_for: ['https://unknown.example.com/'] }, /not a registered API resource/],
      ["Latchkey's own API", { resource_server_for: [`${fx.server.url}/api`] }, /Latchkey's own API/],
      ['not a URL', { resource_server_for: ['not a url'] }, /resource_server_for/],
      ['a public client', { resource_server_for: [RESOURCE], client_type: 'public', grant_types: ['authorization_code'], redirect_uris: ['https://app.example.com/cb'] }, /public client/],
    ];
    for (const [label, body, message] of refused) {
      const answer = await fx.api('POST', '/api/clients/', { token: staffToken, json: { client_name: `Refused ${label}`, grant_types: ['client_credentials'], ...body } });
      expect(answer.status, `${label}: ${answer.text}`).toBe(400);
      expect(answer.json['error'], label).toBe('invalid_client_metadata');
      expect(String(answer.json['error_description']), label).toMatch(message);
    }

    const made = await cli('client', 'create', '--name', 'Reports API', '--grant-type', 'client_credentials', '--resource-server-for', RESOURCE, '--json');
    expect(made.code, describeResult(made)).toBe(0);
    const { client_id: reportsId, client_secret: reportsSecret } = JSON.parse(made.stdout) as { client_id: string; client_secret: string };
    expect((await introspectAs(basic(reportsId, reportsSecret), dot?.access_token ?? '')).json).toMatchObject({ active: true });
    const bad = await cli('client', 'create', '--name', 'Bad API', '--grant-type', 'client_credentials', '--resource-server-for', 'https://unknown.example.com/');
    expect(bad.code, describeResult(bad)).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/not a registered API resource/);
  });

  it("an imported app asking for DOT's scopes in the code flow without resource= gets a token for the Django resource; other clients do not", async () => {
    const alice = { username: 'alice', password: passwordOf('alice') };
    const partner = app('Partner Site');
    const redirect = partner.redirect_uris?.[0] ?? 'http://localhost:8080/partner';
    const config = await oidc.discovery(new URL(fx.server.issuer), partner.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const { callbackUrl, codeVerifier, state, nonce } = await authorize(config, new UserAgent(), alice, { scope: 'openid read', redirect_uri: redirect });
    const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    expect(tokens.claims()?.sub).toBe(String((await fx.server.latchkey.storage.users.findByLogin('alice'))?.id));
    expect(tokens.scope).toBe('read');
    const seen = await introspectAs(credentials('Nightly Batch'), tokens.access_token);
    expect(seen.json).toMatchObject({ active: true, aud: RESOURCE, scope: 'read', client_id: partner.client_id, username: 'alice' });

    // A client made in Latchkey asking the same: `read` is no scope of its, dropped as any unknown scope.
    const local = await makeClient(fx.server.latchkey, { isPublic: true, redirectUris: [redirect] });
    const localConfig = await oidc.discovery(new URL(fx.server.issuer), local.client.clientId, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const localRun = await authorize(localConfig, new UserAgent(), alice, { scope: 'openid read', redirect_uri: redirect });
    const localTokens = await oidc.authorizationCodeGrant(localConfig, localRun.callbackUrl, { pkceCodeVerifier: localRun.codeVerifier, expectedState: localRun.state, expectedNonce: localRun.nonce });
    expect(localTokens.scope?.split(' ') ?? []).not.toContain('read');
    expect((await introspectAs(credentials('Nightly Batch'), localTokens.access_token)).json).toEqual({ active: false });
  });
});

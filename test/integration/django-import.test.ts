import path from 'node:path';
import knexFactory from 'knex';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ImportReport } from '../../src/core/import/import-report.js';
import { createGroupRepository } from '../../src/storage/groups.js';
import { createUserPermissionRepository } from '../../src/storage/user-permissions.js';
import * as oidc from 'openid-client';
import { describeOnBackends } from '../helpers/fixture.js';
import { seedDjangoSite, type DjangoApplication, type DjangoSite, type DjangoUser } from '../helpers/django.js';
import { UserAgent } from '../helpers/browserless.js';
import { authorize, discover } from '../helpers/rp.js';
import { freshDatabase } from '../helpers/database.js';
import { runProcess, type ProcessResult } from '../helpers/process.js';

/**
 * `import django` against a database real Django 3.2 and django-oauth-toolkit built
 * (test/fixtures/django/seed.py): SQLite into a SQLite Latchkey, PostgreSQL into a PostgreSQL
 * one, through the compiled CLI while the server runs; then everyone signs in over HTTP with
 * the password they had in Django.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const describeResult = (r: ProcessResult) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

describeOnBackends('import django (%s)', { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' }, (fx) => {
  let site: DjangoSite;
  const cli = (...args: string[]) => runProcess(process.execPath, [MAIN, ...args], { env: { ...process.env, DATABASE_URL: fx.server.db.url, BCRYPT_COST: '10' }, cwd: ROOT });
  const importArgs = (...more: string[]) => ['import', 'django', '--from', site.from, '--user-table', site.manifest.user_table, ...more];
  async function runImport(...more: string[]): Promise<ImportReport> {
    const r = await cli(...importArgs('--json', ...more));
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stderr, describeResult(r)).toBe('');
    expect(r.stdout).toMatch(/^[^\n]+\n$/);
    return JSON.parse(r.stdout) as ImportReport;
  }
  const djangoUser = (username: string): DjangoUser => {
    const user = site.manifest.users.find((u) => u.username === username);
    if (!user) throw new Error(`no ${username} in the fixture`);
    return user;
  };
  const application = (grant: DjangoApplication['grant']): DjangoApplication => {
    const app = site.manifest.applications.find((a) => a.grant === grant);
    if (!app) throw new Error(`no ${grant} application in the fixture`);
    return app;
  };
  const named = (name: string): DjangoApplication => {
    const app = site.manifest.applications.find((a) => a.name === name);
    if (!app) throw new Error(`no application "${name}" in the fixture`);
    return app;
  };
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  const withPassword = () => site.manifest.users.filter((u) => u.password !== null && u.is_active && u.username !== 'taken');
  const countUsers = () => fx.server.latchkey.storage.users.count();
  const auditEvents = async (event: string) => (await fx.server.latchkey.services.audit.list({ offset: 0, limit: 100, event })).events;

  beforeAll(async () => {
    site = await seedDjangoSite(fx.backend);
    // Someone already has a Latchkey account named like a Django user.
    await fx.makeUser({ username: 'taken', email: 'someone-else@example.com' });
  });
  afterAll(async () => {
    await site?.drop();
  });

  it('--dry-run reports what it would do and changes nothing', async () => {
    const before = await countUsers();
    const r = await cli(...importArgs('--dry-run'));
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^dry run \(nothing changed\): imported from /);
    expect(r.stdout).toContain('users: 12 found, 11 created, 0 updated, 0 unchanged, 1 skipped');
    expect(r.stdout).toContain('clients: 5 found, 4 created, 0 updated, 0 unchanged, 1 skipped');
    expect(r.stdout).toMatch(/skipped client \d+ "Old Implicit Page": implicit_not_supported/);
    expect(r.stdout).toMatch(/skipped user \d+ "taken": username_taken/);
    const json = await runImport('--dry-run');
    expect(json.dry_run).toBe(true);
    expect(json.users).toEqual({ found: 12, created: 11, updated: 0, unchanged: 0, skipped: 1 });
    expect(await countUsers()).toBe(before);
    expect(await fx.server.latchkey.storage.clients.find(application('password').client_id)).toBeUndefined();
    expect(await fx.server.latchkey.storage.users.findByLogin('alice')).toBeUndefined();
    expect(await auditEvents('import.django')).toHaveLength(0);
  });

  it('--dry-run on a brand-new database leaves no data behind, not even the first signing keys', async () => {
    const db = await freshDatabase(fx.backend);
    const knex = knexFactory(db.backend === 'sqlite' ? { client: 'better-sqlite3', connection: { filename: db.url.slice('sqlite:'.length) }, useNullAsDefault: true } : { client: 'pg', connection: db.url });
    try {
      const r = await runProcess(process.execPath, [MAIN, ...importArgs('--dry-run', '--json')], { env: { ...process.env, DATABASE_URL: db.url }, cwd: ROOT });
      expect(r.code, describeResult(r)).toBe(0);
      // All twelve: this database has no account named "taken".
      expect((JSON.parse(r.stdout) as ImportReport).users.created).toBe(12);
      for (const table of ['users', 'clients', 'groups', 'signing_keys', 'cookie_keys', 'audit_events', 'django_import_links']) {
        const row = (await knex(table).count({ n: '*' }).first()) as { n: unknown };
        expect(Number(row.n), table).toBe(0);
      }
    } finally {
      await knex.destroy();
      await db.drop();
    }
  });

  it('imports every user with their fields, reports conflicts per row and what is not imported yet', async () => {
    const report = await runImport();
    expect(report.dry_run).toBe(false);
    expect(report.users).toEqual({ found: 12, created: 11, updated: 0, unchanged: 0, skipped: 1 });
    expect(report.clients).toEqual({ found: 5, created: 4, updated: 0, unchanged: 0, skipped: 1 });
    expect(report.skipped).toEqual([
      { kind: 'user', source_id: expect.any(String), name: 'taken', reason: 'username_taken' },
      { kind: 'client', source_id: expect.any(String), name: 'Old Implicit Page', reason: 'implicit_not_supported' },
    ]);
    expect(report.errors).toEqual([]);
    expect(report.passwords).toEqual({ pbkdf2_sha256: 4, pbkdf2_sha1: 1, argon2id: 1, bcrypt_sha256: 1, bcrypt: 1, argon2i: 1, scrypt: 1, unusable: 1 });
    expect(report.groups).toEqual({ found: 2, created: 2, updated: 0, unchanged: 0, skipped: 0 });
    expect(report.memberships).toBe(3);
    // Alice's direct permission (seed.py) is imported, not left behind.
    expect(report.user_permissions).toBe(1);
    expect(report.not_imported).toEqual({ 'access tokens': 2, 'refresh tokens': 3 });

    const alice = await fx.server.latchkey.storage.users.findByLogin('alice');
    expect(alice).toMatchObject({ email: 'alice@example.com', firstName: 'Alice', lastName: 'Liddell', isActive: true, isStaff: false, isSuperuser: false, emailVerified: false });
    expect(alice?.passwordHash).toBe(djangoUser('alice').encoded);
    // Django's own times: joined before the import, signed in three days ago.
    expect(alice?.dateJoined).toBeLessThan(Date.now() - 1000);
    expect(alice?.lastLogin).toBeGreaterThan(Date.now() - 4 * 86_400_000);
    expect(alice?.lastLogin).toBeLessThan(Date.now() - 2 * 86_400_000);
    expect(await fx.server.latchkey.storage.users.findByLogin('root')).toMatchObject({ isStaff: true, isSuperuser: true });
    expect(await fx.server.latchkey.storage.users.findByLogin('judy')).toMatchObject({ isStaff: true, isSuperuser: false });
    expect(await fx.server.latchkey.storage.users.findByLogin('ivan')).toMatchObject({ isActive: false });
    const groups = createGroupRepository(fx.server.latchkey.storage.knex);
    expect(await groups.findByName('editors')).toMatchObject({ permissions: ['users.change_user', 'users.view_user'] });
    expect(await groups.findByName('auditors')).toMatchObject({ permissions: [] });
    for (const user of site.manifest.users.filter((u) => u.username !== 'taken')) {
      const id = (await fx.server.latchkey.storage.users.findByLogin(user.username))?.id as number;
      expect(await groups.namesForUser(id), user.username).toEqual(user.groups);
    }
    const direct = createUserPermissionRepository(fx.server.latchkey.storage.knex);
    expect(await direct.forUser(alice?.id as number)).toEqual(['auth.view_group']);
    expect(await direct.forUser((await fx.server.latchkey.storage.users.findByLogin('bob'))?.id as number)).toEqual([]);
    // The Latchkey account named "taken" is untouched.
    expect(await fx.server.latchkey.storage.users.findByLogin('taken')).toMatchObject({ email: 'someone-else@example.com' });

    const [event] = await auditEvents('import.django');
    expect(event?.details).toMatchObject({ users: report.users, clients: report.clients, skipped: 2, errors: 0 });
  });

  it('wrong guesses at an imported password count in the login throttle like any other', async () => {
    const frank = djangoUser('frank');
    for (let i = 0; i < 3; i += 1) {
      const answer = await fx.api('POST', '/api/token/', { json: { username: 'frank', password: `guess ${i}` } });
      expect(answer.status).toBe(401);
    }
    const locked = await fx.api('POST', '/api/token/', { json: { username: 'frank', password: frank.password } });
    expect(locked.status).toBe(429);
    // Refused before any hashing: the Django hash is still there, not upgraded.
    expect((await fx.server.latchkey.storage.users.findByLogin('frank'))?.passwordHash).toBe(frank.encoded);
    const failures = (await auditEvents('login.failure')).filter((e) => e.actor === 'frank');
    expect(failures.map((e) => e.details?.['reason'])).toEqual(['wrong_password', 'wrong_password', 'wrong_password']);
    // The lockout has made its point; the next tests sign frank in.
    await fx.server.latchkey.storage.knex('auth_failures').delete();
  });

  it('every imported password signs in at /api/token/, in each of Django’s formats; wrong ones do not', async () => {
    for (const user of withPassword()) {
      const wrong = await fx.api('POST', '/api/token/', { json: { username: user.username, password: `${user.password}!` } });
      expect(wrong.status, `${user.hasher}: ${wrong.text}`).toBe(401);
      const pair = await fx.apiLogin(user.username, user.password as string);
      expect(pair.access, user.hasher).toBeTruthy();
    }
  });

  it('the first login replaced each Django hash with Latchkey’s bcrypt (audited), and the password still works', async () => {
    for (const user of withPassword()) {
      const stored = await fx.server.latchkey.storage.users.findByLogin(user.username);
      expect(stored?.passwordHash, user.hasher).toMatch(/^bcrypt_sha256\$\$2b\$10\$/);
    }
    const upgrades = await auditEvents('password.upgraded');
    const from = upgrades.map((e) => e.details?.['from']).sort();
    // bcrypt_sha256 is Latchkey's own format already (only its cost changed): no upgrade event.
    expect(from).toEqual(['argon2i', 'argon2id', 'bcrypt', 'pbkdf2_sha1', 'pbkdf2_sha256', 'pbkdf2_sha256', 'pbkdf2_sha256', 'scrypt']);
    const grace = djangoUser('grace');
    await fx.apiLogin('grace', grace.password as string);
    // The form login of the older provider takes the address too, whatever its case.
    const form = await fx.api('POST', '/users/login/', { form: { username: 'ALICE@example.com', password: djangoUser('alice').password as string } });
    expect(form.status, form.text).toBe(200);
    expect(form.json['access_token']).toEqual(expect.any(String));
  });

  it('applications keep their client_id, grant, redirect URIs and kind; ID tokens only where DOT had RS256', async () => {
    const spa = await fx.server.latchkey.storage.clients.find(application('authorization-code').client_id);
    expect(spa).toMatchObject({ name: 'Web SPA', isPublic: true, hasSecret: false });
    expect(spa?.metadata).toMatchObject({
      redirect_uris: ['https://spa.example.com/callback', 'http://localhost:8080/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
      scope: 'openid profile email groups offline_access',
    });
    const mobile = await fx.server.latchkey.storage.clients.find(application('password').client_id);
    expect(mobile).toMatchObject({ isPublic: false, hasSecret: true });
    expect(mobile?.metadata).toMatchObject({ grant_types: ['password', 'refresh_token'], scope: 'profile email groups offline_access' });
    expect(await fx.server.latchkey.storage.clients.find(application('implicit').client_id)).toBeUndefined();
  });

  it('the DOT 1 password-grant app signs people in at /o/token with its clear Django secret, kept as is', async () => {
    const mobile = application('password');
    const alice = djangoUser('alice');
    const grant = (secret: string, scope = 'profile') =>
      fx.api('POST', '/o/token', { authorization: basic(mobile.client_id, secret), form: { grant_type: 'password', username: 'alice', password: alice.password as string, scope } });
    const ok = await grant(mobile.client_secret as string);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json).toMatchObject({ token_type: 'Bearer', scope: 'profile', access_token: expect.any(String), refresh_token: expect.any(String) });
    const introspected = await fx.api('POST', '/o/token/introspection', { authorization: basic(mobile.client_id, mobile.client_secret as string), form: { token: ok.json['access_token'] as string } });
    expect(introspected.status, introspected.text).toBe(200);
    const aliceId = (await fx.server.latchkey.storage.users.findByLogin('alice'))?.id;
    expect(introspected.json).toMatchObject({ active: true, client_id: mobile.client_id, sub: String(aliceId), scope: 'profile' });
    // Without the groups scope, no groups.
    expect(introspected.json).not.toHaveProperty('groups');
    const withGroups = await grant(mobile.client_secret as string, 'profile groups');
    expect(withGroups.status, withGroups.text).toBe(200);
    const groupsIntrospected = await fx.api('POST', '/o/token/introspection', { authorization: basic(mobile.client_id, mobile.client_secret as string), form: { token: withGroups.json['access_token'] as string } });
    expect(groupsIntrospected.json).toMatchObject({ active: true, scope: 'profile groups', groups: ['editors'] });
    // OAuth only (DOT's empty algorithm): no openid, so no ID token.
    expect((await grant(mobile.client_secret as string, 'openid profile')).json['error']).toBe('invalid_scope');
    const wrong = await grant(`${mobile.client_secret as string}x`);
    expect(wrong.status).toBe(401);
    expect(wrong.json['error']).toBe('invalid_client');
  });

  it('the DOT 2 hashed secret works with client_credentials (openid-client), and is rehashed at its first use', async () => {
    const batch = application('client-credentials');
    const storedSecret = async () => (await fx.server.latchkey.storage.clients.findProviderMetadata(batch.client_id))?.['client_secret'];
    expect(await storedSecret()).toMatch(/^pbkdf2_sha256\$/);
    const wrong = await fx.api('POST', '/o/token', { authorization: basic(batch.client_id, 'not the secret'), form: { grant_type: 'client_credentials' } });
    expect(wrong.status).toBe(401);
    expect(wrong.json['error']).toBe('invalid_client');
    // The wrong one changed nothing.
    expect(await storedSecret()).toMatch(/^pbkdf2_sha256\$/);

    const config = await discover(`${fx.url()}/o`, batch.client_id, batch.client_secret);
    const first = await oidc.clientCredentialsGrant(config);
    expect(first.access_token).toEqual(expect.any(String));
    expect(await storedSecret()).toMatch(/^[0-9a-f]{64}$/);
    const [upgrade] = await auditEvents('client.secret_upgraded');
    expect(upgrade).toMatchObject({ actor: batch.client_id, details: { from: 'pbkdf2_sha256' } });
    // The same Django-issued secret goes on working, now against Latchkey's hash.
    expect((await oidc.clientCredentialsGrant(config)).access_token).toEqual(expect.any(String));
    await expect(oidc.clientCredentialsGrant(await discover(`${fx.url()}/o`, batch.client_id, 'guess'))).rejects.toThrow(/challenge|invalid_client/i);
  });

  it('skip_authorization carries over: the SPA signs in without a consent screen (code + PKCE) and gets the groups claim, the partner site still asks', async () => {
    const alice = { username: 'alice', password: djangoUser('alice').password as string };
    const spa = named('Web SPA');
    const spaConfig = await discover(`${fx.url()}/o`, spa.client_id, null);
    const signedIn = await authorize(
      spaConfig,
      new UserAgent(),
      alice,
      { redirect_uri: 'http://localhost:8080/cb', scope: 'openid profile groups', claims: JSON.stringify({ id_token: { groups: null } }) },
      { consent: 'skip' },
    );
    const tokens = await oidc.authorizationCodeGrant(spaConfig, signedIn.callbackUrl, {
      pkceCodeVerifier: signedIn.codeVerifier,
      expectedState: signedIn.state,
      expectedNonce: signedIn.nonce,
      idTokenExpected: true,
    });
    expect(tokens.claims()?.sub).toBe(String((await fx.server.latchkey.storage.users.findByLogin('alice'))?.id));
    const userinfo = await oidc.fetchUserInfo(spaConfig, tokens.access_token, tokens.claims()?.sub as string);
    expect(userinfo.preferred_username).toBe('alice');
    // Without the scope there is none: bob signs in for openid profile only.
    const bob = { username: 'bob', password: djangoUser('bob').password as string };
    const plain = await authorize(spaConfig, new UserAgent(), bob, { redirect_uri: 'http://localhost:8080/cb', scope: 'openid profile' }, { consent: 'skip' });
    const plainTokens = await oidc.authorizationCodeGrant(spaConfig, plain.callbackUrl, { pkceCodeVerifier: plain.codeVerifier, expectedState: plain.state, expectedNonce: plain.nonce });
    const plainInfo = await oidc.fetchUserInfo(spaConfig, plainTokens.access_token, plainTokens.claims()?.sub as string);
    expect(plainInfo.preferred_username).toBe('bob');
    expect(plainInfo).not.toHaveProperty('groups');
    expect(tokens.scope?.split(' ').sort()).toEqual(['groups', 'openid', 'profile']);
    // The groups claim: in the ID token (asked for with the claims parameter) and at userinfo.
    expect(tokens.claims()?.['groups']).toEqual(['editors']);
    expect(userinfo['groups']).toEqual(['editors']);

    const partner = named('Partner Site');
    const partnerConfig = await discover(`${fx.url()}/o`, partner.client_id, null);
    // The consent page says what the groups scope gives away.
    await expect(
      authorize(partnerConfig, new UserAgent(), alice, { redirect_uri: 'http://localhost:8080/partner', scope: 'openid groups' }, { consent: 'skip' }),
    ).rejects.toThrow(/unexpected page .*\/interaction\/.*See which groups you belong to/s);
  });

  it('dynamic registration cannot give a client skip_consent', async () => {
    const iat = await cli('iat', 'create', '--json');
    expect(iat.code, describeResult(iat)).toBe(0);
    const token = (JSON.parse(iat.stdout) as { initial_access_token: string }).initial_access_token;
    const register = (extra: Record<string, unknown>) =>
      fx.api('POST', '/o/reg', { token, json: { redirect_uris: ['https://rp.example.com/cb'], token_endpoint_auth_method: 'none', ...extra } });
    const refused = await register({ skip_consent: true });
    expect(refused.status, refused.text).toBe(400);
    expect(refused.json).toMatchObject({ error: 'invalid_client_metadata', error_description: expect.stringContaining('skip_consent') });
    const notBoolean = await register({ skip_consent: 'yes' });
    expect(notBoolean.status, notBoolean.text).toBe(400);
  });

  it('an unusable password and an inactive account never sign in', async () => {
    const heidi = djangoUser('heidi');
    for (const guess of ['', heidi.encoded, heidi.encoded.slice(1), 'password']) {
      const answer = await fx.api('POST', '/api/token/', { json: { username: 'heidi', password: guess } });
      expect(answer.status).not.toBe(200);
    }
    const ivan = await fx.api('POST', '/api/token/', { json: { username: 'ivan', password: djangoUser('ivan').password } });
    expect(ivan.status).toBe(401);
    expect((await fx.server.latchkey.storage.users.findByLogin('ivan'))?.passwordHash).toBe(djangoUser('ivan').encoded);
    // Those guesses locked heidi (3 failures); a later test gives her a password.
    await fx.server.latchkey.storage.knex('auth_failures').delete();
  });

  it('a second run updates what changed in Django and duplicates nothing; a Latchkey password stays', async () => {
    const before = await countUsers();
    const again = await runImport();
    expect(again.users).toEqual({ found: 12, created: 0, updated: 0, unchanged: 11, skipped: 1 });
    expect(again.clients).toEqual({ found: 5, created: 0, updated: 0, unchanged: 4, skipped: 1 });
    expect(again.groups).toEqual({ found: 2, created: 0, updated: 0, unchanged: 2, skipped: 0 });
    expect(again.memberships).toBe(3);
    expect(again.user_permissions).toBe(1);
    const groups = createGroupRepository(fx.server.latchkey.storage.knex);
    expect(await groups.count()).toBe(2);
    // A group made in Latchkey keeps its members whatever Django says.
    const own = await groups.create('latchkey-only', []);
    const bobId = (await fx.server.latchkey.storage.users.findByLogin('bob'))?.id as number;
    await groups.setMembershipsWithin(bobId, [], [own.id]);
    // The batch secret was upgraded to Latchkey's hash at first use: a later run leaves it so.
    expect((await fx.server.latchkey.storage.clients.findProviderMetadata(application('client-credentials').client_id))?.['client_secret']).toMatch(/^[0-9a-f]{64}$/);
    expect(await countUsers()).toBe(before);

    // Changes made in Django after the first run: a new name for bob, a new password for heidi.
    const source = site.backend === 'sqlite'
      ? knexFactory({ client: 'better-sqlite3', connection: { filename: site.from }, useNullAsDefault: true })
      : knexFactory({ client: 'pg', connection: site.from });
    try {
      await source(site.manifest.user_table).where({ username: 'bob' }).update({ first_name: 'Robert', password: djangoUser('alice').encoded });
      await source(site.manifest.user_table).where({ username: 'heidi' }).update({ password: djangoUser('alice').encoded });
      // Bob moves from auditors to editors; editors loses a permission.
      const djangoBob = (await source(site.manifest.user_table).where({ username: 'bob' }).first('id')) as { id: number };
      const editors = (await source('auth_group').where({ name: 'editors' }).first('id')) as { id: number };
      await source(`${site.manifest.user_table}_groups`).where({ user_id: djangoBob.id }).delete();
      await source(`${site.manifest.user_table}_groups`).insert({ user_id: djangoBob.id, group_id: editors.id });
      const change = (await source('auth_permission').where({ codename: 'change_user' }).first('id')) as { id: number };
      await source('auth_group_permissions').where({ group_id: editors.id, permission_id: change.id }).delete();
    } finally {
      await source.destroy();
    }
    const third = await runImport('--emails-verified');
    // Everyone with an address is now verified (--emails-verified), so every imported row changed.
    expect(third.users).toEqual({ found: 12, created: 0, updated: 11, unchanged: 0, skipped: 1 });
    expect(third.groups).toEqual({ found: 2, created: 0, updated: 1, unchanged: 1, skipped: 0 });
    expect(await groups.namesForUser(bobId)).toEqual(['editors', 'latchkey-only']);
    expect(await groups.findByName('editors')).toMatchObject({ permissions: ['users.view_user'] });
    const bob = await fx.server.latchkey.storage.users.findByLogin('bob');
    expect(bob).toMatchObject({ firstName: 'Robert', emailVerified: true });
    // Bob signed in to Latchkey since the first run: his Latchkey hash is not replaced by Django's.
    expect(bob?.passwordHash).toMatch(/^bcrypt_sha256\$/);
    await fx.apiLogin('bob', djangoUser('bob').password as string);
    // Heidi never signed in here: she gets the password she now has in Django.
    expect((await fx.server.latchkey.storage.users.findByLogin('heidi'))?.passwordHash).toBe(djangoUser('alice').encoded);
    await fx.apiLogin('heidi', djangoUser('alice').password as string);
  });

  it('refuses bad options and unreadable sources with one line and a non-zero exit', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['import', 'django'], 2, /--from is required/],
      [['import', 'flask', '--from', site.from], 2, /unknown import source "flask"/],
      [['import', 'django', '--from', site.from, '--resource', 'https://site.example.com/api'], 2, /--resource, --scope and --resource-server go with --tokens/],
      [['import', 'django', '--from', site.from, '--tokens', '--resource', 'urn:dot'], 2, /--resource "urn:dot" is not an API resource identifier/],
      [['import', 'django', '--from', site.from, '--tokens', '--scope', 'openid'], 2, /--scope "openid" is not a scope/],
      [['import', 'django', '--from', '/nonexistent/db.sqlite3'], 1, /no SQLite file at \/nonexistent\/db\.sqlite3/],
      [['import', 'django', '--from', site.from], 1, /has no table auth_user \(a custom user model\? pass --user-table/],
      [['import', 'django', '--from', site.from, '--user-table', 'users_user; drop table x'], 1, /is not a table name/],
      [['import', 'django', '--from', 'postgres://postgres@127.0.0.1:1/nothing'], 1, /cannot read postgres:\/\/127\.0\.0\.1:1\/nothing: .*ECONNREFUSED/],
    ];
    for (const [args, code, message] of cases) {
      const r = await cli(...args);
      expect(r.code, describeResult(r)).toBe(code);
      expect(r.stdout, describeResult(r)).toBe('');
      expect(r.stderr, describeResult(r)).toMatch(/^error: [^\n]+\n$/);
      expect(r.stderr).toMatch(message);
    }
  });
});

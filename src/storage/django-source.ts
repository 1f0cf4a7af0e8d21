import fs from 'node:fs';
import knexFactory, { type Knex } from 'knex';

/**
 * Reads a Django site's database (SQLite file or PostgreSQL) for `import django`: the user
 * table (auth_user or a custom one), groups and permissions. Opened read-only where the driver
 * allows it (SQLite); only SELECTs are ever sent.
 */

/** A problem with the source database the operator can fix: one sentence. */
export class DjangoSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DjangoSourceError';
  }
}

export interface DjangoUserRow {
  id: string;
  username: string;
  /** The password column as Django stored it (`<algorithm>$…`, or `!…` when unusable). */
  password: string;
  email: string;
  firstName: string;
  lastName: string;
  isActive: boolean;
  isStaff: boolean;
  isSuperuser: boolean;
  /** Epoch milliseconds. */
  dateJoined: number;
  lastLogin: number | null;
}

/** A row of django-oauth-toolkit's oauth2_provider_application (1.x or 2.x). */
export interface DjangoApplicationRow {
  id: string;
  clientId: string;
  /** In clear (DOT 1.x), or a Django password hash (DOT 2.x hashes it on save). */
  clientSecret: string;
  name: string;
  /** `confidential` or `public`. */
  clientType: string;
  /** `authorization-code`, `implicit`, `password`, `client-credentials`, `openid-hybrid`. */
  grantType: string;
  redirectUris: string[];
  /** DOT 2.x only; empty before. */
  postLogoutRedirectUris: string[];
  skipAuthorization: boolean;
  /** `RS256`, `HS256` or '' (no OIDC); DOT 1.5+ only, '' before. */
  algorithm: string;
}

/**
 * A row of oauth2_provider_accesstoken or oauth2_provider_refreshtoken. DOT 1.x and 2.x keep
 * `token` in clear (3.x too, with a `token_checksum` beside it); only rows with a user are
 * read (client_credentials tokens have none and are not brought across).
 */
export interface DjangoTokenRow {
  id: string;
  /** The token value as the app holds it. */
  token: string;
  userId: string;
  applicationId: string;
  /** Access tokens: space-separated DOT scopes. Refresh tokens: their access token's, '' when it is gone. */
  scope: string;
  /** Access tokens: epoch ms. Refresh tokens: null (DOT's do not expire by themselves). */
  expires: number | null;
  /** Refresh tokens: when DOT revoked it (epoch ms), else null. */
  revoked: number | null;
}

/** A token row of either kind as Django's columns hold it; `when` says how it ends. */
function tokenRow(r: Record<string, unknown>, when: Pick<DjangoTokenRow, 'expires' | 'revoked'>): DjangoTokenRow {
  return {
    id: String(r['id']),
    token: String(r['token'] ?? ''),
    userId: String(r['user_id']),
    applicationId: String(r['application_id'] ?? ''),
    scope: String(r['scope'] ?? ''),
    ...when,
  };
}

export interface DjangoGroupRow {
  id: string;
  name: string;
  /** `app_label.codename`, as Django's has_perm names them. */
  permissions: string[];
}

/** A table name as Django makes them (app_label + model): letters, digits, underscores. */
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** A Django datetime as epoch milliseconds: pg gives Dates; SQLite text, UTC under USE_TZ. */
function epochMs(value: unknown): number | null {
  if (value === null || value === undefined || value === '') return null;
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number') return value;
  const text = String(value).trim().replace(' ', 'T');
  const ms = Date.parse(/([zZ]|[+-]\d\d:?\d\d)$/.test(text) ? text : `${text}Z`);
  return Number.isNaN(ms) ? null : ms;
}

const bool = (value: unknown) => value === true || value === 1 || value === '1' || value === 't';

/** Tables whose rows the import counts (in its report) before it imports them. */
export type DjangoCountedTable = 'oauth2_provider_accesstoken' | 'oauth2_provider_refreshtoken';

export type DjangoSource = Awaited<ReturnType<typeof openDjangoSource>>;

/** Knex's own logging would print connection errors with a stack; they come back as exceptions. */
const QUIET = { warn() {}, error() {}, deprecate() {}, debug() {} };

/** `from`: a PostgreSQL URL (postgres://, postgresql://) or a SQLite file (a path or sqlite:<path>). */
function connect(from: string): { knex: Knex; describe: string } {
  if (/^postgres(ql)?:\/\//.test(from)) {
    let host = '';
    try {
      const url = new URL(from);
      host = `${url.hostname}${url.port ? `:${url.port}` : ''}${url.pathname}`;
    } catch {
      throw new DjangoSourceError('--from is not a valid postgres:// URL');
    }
    return { knex: knexFactory({ client: 'pg', connection: from, pool: { min: 0, max: 2 }, log: QUIET }), describe: `postgres://${host}` };
  }
  const filename = from.startsWith('sqlite:') ? from.slice('sqlite:'.length) : from;
  if (!filename) throw new DjangoSourceError('--from needs a SQLite file or a postgres:// URL');
  if (!fs.existsSync(filename) || !fs.statSync(filename).isFile()) throw new DjangoSourceError(`no SQLite file at ${filename}`);
  const knex = knexFactory({ client: 'better-sqlite3', connection: { filename, options: { readonly: true } }, useNullAsDefault: true, pool: { min: 1, max: 1 }, log: QUIET });
  return { knex, describe: filename };
}

/** Opens the source and checks it is reachable and has the user table; close() when done. */
export async function openDjangoSource(from: string, userTable: string) {
  if (!TABLE_NAME.test(userTable)) throw new DjangoSourceError(`--user-table "${userTable}" is not a table name`);
  const { knex, describe } = connect(from);
  const has = (table: string) => knex.schema.hasTable(table);
  try {
    if (!(await has(userTable))) {
      const hint = (await has('auth_user')) ? ' (auth_user exists: drop --user-table)' : ' (a custom user model? pass --user-table <app>_<model>)';
      throw new DjangoSourceError(`${describe} has no table ${userTable}${hint}`);
    }
  } catch (error) {
    await knex.destroy();
    if (error instanceof DjangoSourceError) throw error;
    throw new DjangoSourceError(`cannot read ${describe}: ${(error as Error).message.split('\n')[0]}`);
  }

  /** The M2M table user↔groups ("<user table>_groups") and its column naming the user (`user_id` for a model named User). */
  async function userColumnOf(linkTable: string): Promise<string | undefined> {
    if (!(await has(linkTable))) return undefined;
    const columns = Object.keys(await knex(linkTable).columnInfo());
    return columns.find((c) => c.endsWith('_id') && c !== 'group_id' && c !== 'id');
  }

  return {
    describe,

    /** auth_group with each group's permissions; none when the site has no auth_group. */
    async groups(): Promise<DjangoGroupRow[]> {
      if (!(await has('auth_group'))) return [];
      const groups = (await knex('auth_group').select('id', 'name').orderBy('id')) as Array<{ id: unknown; name: unknown }>;
      const granted = (await knex('auth_group_permissions')
        .join('auth_permission', 'auth_permission.id', 'auth_group_permissions.permission_id')
        .join('django_content_type', 'django_content_type.id', 'auth_permission.content_type_id')
        .select({ group: 'auth_group_permissions.group_id', app: 'django_content_type.app_label', codename: 'auth_permission.codename' })) as Array<{ group: unknown; app: unknown; codename: unknown }>;
      return groups.map((g) => ({
        id: String(g.id),
        name: String(g.name),
        permissions: granted.filter((p) => String(p.group) === String(g.id)).map((p) => `${String(p.app)}.${String(p.codename)}`).sort(),
      }));
    },

    /** Django group ids by Django user id. */
    async memberships(): Promise<Map<string, string[]>> {
      const byUser = new Map<string, string[]>();
      const link = `${userTable}_groups`;
      const userColumn = await userColumnOf(link);
      if (!userColumn) return byUser;
      const rows = (await knex(link).select({ user: userColumn, group: 'group_id' })) as Array<{ user: unknown; group: unknown }>;
      for (const row of rows) byUser.set(String(row.user), [...(byUser.get(String(row.user)) ?? []), String(row.group)]);
      return byUser;
    },

    /** Permissions given to users directly ("<user table>_user_permissions"), as `app_label.codename` sorted, by Django user id. */
    async directPermissions(): Promise<Map<string, string[]>> {
      const byUser = new Map<string, string[]>();
      const link = `${userTable}_user_permissions`;
      if (!(await has(link))) return byUser;
      const userColumn = await userColumnOf(link);
      if (!userColumn) return byUser;
      const rows = (await knex(link)
        .join('auth_permission', 'auth_permission.id', `${link}.permission_id`)
        .join('django_content_type', 'django_content_type.id', 'auth_permission.content_type_id')
        .select({ user: `${link}.${userColumn}`, app: 'django_content_type.app_label', codename: 'auth_permission.codename' })) as Array<{ user: unknown; app: unknown; codename: unknown }>;
      for (const row of rows) byUser.set(String(row.user), [...(byUser.get(String(row.user)) ?? []), `${String(row.app)}.${String(row.codename)}`]);
      for (const list of byUser.values()) list.sort();
      return byUser;
    },

    async users(): Promise<DjangoUserRow[]> {
      const rows = (await knex(userTable).select('*').orderBy('id')) as Array<Record<string, unknown>>;
      return rows.map((r) => ({
        id: String(r['id']),
        username: String(r['username'] ?? ''),
        password: String(r['password'] ?? ''),
        email: String(r['email'] ?? ''),
        firstName: String(r['first_name'] ?? ''),
        lastName: String(r['last_name'] ?? ''),
        isActive: bool(r['is_active']),
        isStaff: bool(r['is_staff']),
        isSuperuser: bool(r['is_superuser']),
        dateJoined: epochMs(r['date_joined']) ?? Date.now(),
        lastLogin: epochMs(r['last_login']),
      }));
    },

    /**
     * Addresses django-allauth recorded as verified (its account_emailaddress table), lower-cased,
     * by Django user id; empty when the site did not use allauth.
     */
    async verifiedEmails(): Promise<Map<string, Set<string>>> {
      const byUser = new Map<string, Set<string>>();
      if (!(await has('account_emailaddress'))) return byUser;
      const rows = (await knex('account_emailaddress').select('user_id', 'email', 'verified')) as Array<Record<string, unknown>>;
      for (const row of rows) {
        if (!bool(row['verified'])) continue;
        const id = String(row['user_id']);
        if (!byUser.has(id)) byUser.set(id, new Set());
        byUser.get(id)?.add(String(row['email']).trim().toLowerCase());
      }
      return byUser;
    },

    /** The OAuth applications; none when the site has no django-oauth-toolkit. */
    async applications(): Promise<DjangoApplicationRow[]> {
      if (!(await has('oauth2_provider_application'))) return [];
      const rows = (await knex('oauth2_provider_application').select('*').orderBy('id')) as Array<Record<string, unknown>>;
      const uris = (value: unknown) => String(value ?? '').split(/\s+/).filter(Boolean);
      return rows.map((r) => ({
        id: String(r['id']),
        clientId: String(r['client_id'] ?? ''),
        clientSecret: String(r['client_secret'] ?? ''),
        name: String(r['name'] ?? ''),
        clientType: String(r['client_type'] ?? ''),
        grantType: String(r['authorization_grant_type'] ?? ''),
        redirectUris: uris(r['redirect_uris']),
        postLogoutRedirectUris: uris(r['post_logout_redirect_uris']),
        skipAuthorization: bool(r['skip_authorization']),
        algorithm: String(r['algorithm'] ?? ''),
      }));
    },

    /** Access tokens with a user (none when the site has no django-oauth-toolkit). */
    async accessTokens(): Promise<DjangoTokenRow[]> {
      if (!(await has('oauth2_provider_accesstoken'))) return [];
      const rows = (await knex('oauth2_provider_accesstoken').whereNotNull('user_id').select('id', 'token', 'user_id', 'application_id', 'scope', 'expires').orderBy('id')) as Array<Record<string, unknown>>;
      return rows.map((r) => tokenRow(r, { expires: epochMs(r['expires']) ?? 0, revoked: null }));
    },

    /** Refresh tokens with a user, each with the scope of the access token it came with. */
    async refreshTokens(): Promise<DjangoTokenRow[]> {
      if (!(await has('oauth2_provider_refreshtoken'))) return [];
      const rows = (await knex('oauth2_provider_refreshtoken as r')
        .leftJoin('oauth2_provider_accesstoken as a', 'a.id', 'r.access_token_id')
        .whereNotNull('r.user_id')
        .select({ id: 'r.id', token: 'r.token', user_id: 'r.user_id', application_id: 'r.application_id', revoked: 'r.revoked', scope: 'a.scope' })
        .orderBy('r.id')) as Array<Record<string, unknown>>;
      return rows.map((r) => tokenRow(r, { expires: null, revoked: epochMs(r['revoked']) }));
    },

    /** Rows in one of Django's tables (0 when the site does not have it). */
    async count(table: DjangoCountedTable): Promise<number> {
      if (!(await has(table))) return 0;
      const row = (await knex(table).count({ n: '*' }).first()) as { n: unknown } | undefined;
      return Number(row?.n ?? 0);
    },

    async close(): Promise<void> {
      await knex.destroy();
    },
  };
}

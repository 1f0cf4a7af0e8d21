import type { Knex } from 'knex';
import { OIDC_SCOPES } from '../accounts/claims.js';
import { scopeProblems } from '../resources/resource-input.js';
import { createImportLinkRepository } from '../../storage/django-import-links.js';
import { createResourceRepository, type ResourceRecord } from '../../storage/resources.js';
import type { DjangoApplicationRow, DjangoTokenRow } from '../../storage/django-source.js';
import type { ImportReport, RowCounts, SkipReason } from './import-report.js';

/** django-oauth-toolkit's default SCOPES setting: every DOT site offers these unless it changed them. */
export const DOT_DEFAULT_SCOPES = ['read', 'write'] as const;

/** How long the Django resource's access tokens live: DOT's ACCESS_TOKEN_EXPIRE_SECONDS default (36000) is far longer; ours is an hour. */
const DJANGO_RESOURCE_TTL = 60 * 60;

/**
 * Writes tokens through the provider's own models (so they are stored as the provider stores
 * its own: hashed ids, its payload), on the import's transaction. Built by the composition
 * root (core does not know node-oidc-provider).
 */
export interface ImportedTokenWriter {
  /**
   * The grant of `accountId` to `clientId` with these scopes added (OpenID scopes, and the
   * Django resource's); `grantId` is an earlier run's grant, reused while it still exists.
   * Returns the grant id.
   */
  grant(input: { accountId: string; clientId: string; oidcScope: string[]; resourceScope: string[]; grantId?: string }): Promise<string>;
  /** An access token whose value is DOT's, for the Django resource, expiring when DOT's does. */
  accessToken(input: { value: string; accountId: string; clientId: string; grantId: string; scope: string[]; expiresAt: number }): Promise<void>;
  /** A refresh token whose value is DOT's; the first refresh rotates it into Latchkey's own. */
  refreshToken(input: { value: string; accountId: string; clientId: string; grantId: string; scope: string[] }): Promise<void>;
}

export interface DjangoTokenInput {
  accessTokens: DjangoTokenRow[];
  refreshTokens: DjangoTokenRow[];
  applications: DjangoApplicationRow[];
  /** Django user ids the site has (imported or not). */
  djangoUserIds: Set<string>;
  /** The API resource (RFC 8707) whose scopes are DOT's. */
  resourceIdentifier: string;
  /** The scopes the resource offers beyond DOT's defaults and those the tokens carry. */
  extraScopes: string[];
  /** Each imported client's registered `scope` (the OpenID scopes it may have), by client_id. */
  clientScopes: Map<string, Set<string>>;
  now: number;
}

const OIDC = new Set(OIDC_SCOPES);
const words = (scope: string) => scope.split(/\s+/).filter(Boolean);

/**
 * The Django site as one API resource: its scopes are DOT's (the defaults, those asked for
 * with --scope, and every scope a live token carries), minus OpenID's own names, which stay
 * the provider's. Made by the first run, widened by later ones (never narrowed: a token the
 * last run brought may carry a scope). A resource with that identifier made in Latchkey is
 * not taken over: the run fails instead.
 */
async function ensureDjangoResource(trx: Knex.Transaction, identifier: string, scopes: string[]): Promise<{ resource: ResourceRecord; outcome: 'created' | 'updated' | 'unchanged' }> {
  const resources = createResourceRepository(trx);
  const links = createImportLinkRepository(trx);
  const existing = await resources.findByIdentifier(identifier);
  const linked = existing ? await links.isTarget('resource', String(existing.id)) : false;
  if (existing && !linked) throw new Error(`the API resource ${identifier} was made in Latchkey, not by this import: pass another --resource`);
  if (!existing) {
    const resource = await resources.insert({ identifier, name: 'Django site (django-oauth-toolkit scopes)', scopes, accessTokenTtl: DJANGO_RESOURCE_TTL, accessTokenFormat: 'opaque' });
    await links.save('resource', identifier, { targetId: String(resource.id), sourceDigest: null });
    return { resource, outcome: 'created' };
  }
  const missing = scopes.filter((s) => !existing.scopes.includes(s));
  if (!missing.length) return { resource: existing, outcome: 'unchanged' };
  const { createdAt: _c, updatedAt: _u, id, ...rest } = existing;
  const updated = await resources.update(id, { ...rest, scopes: [...existing.scopes, ...missing] });
  return { resource: updated ?? existing, outcome: 'updated' };
}

/**
 * `--tokens`: DOT's unexpired access tokens and unrevoked refresh tokens, with their user,
 * application and scopes, so signed-in apps stay signed in through the cutover. Runs after
 * users and clients (it needs their links). One grant per user and client; each token saved
 * through the provider (`writerFor` the resource). Idempotent: a token an earlier run brought is never made
 * again (also not after it was used, rotated or revoked here).
 */
export async function importDjangoTokens(trx: Knex.Transaction, input: DjangoTokenInput, writerFor: (resource: ResourceRecord) => ImportedTokenWriter, report: ImportReport): Promise<void> {
  const links = createImportLinkRepository(trx);
  const access: RowCounts = { found: input.accessTokens.length, created: 0, updated: 0, unchanged: 0, skipped: 0 };
  const refresh: RowCounts = { found: input.refreshTokens.length, created: 0, updated: 0, unchanged: 0, skipped: 0 };
  report.access_tokens = access;
  report.refresh_tokens = refresh;

  const resourceScopes = new Set<string>([...DOT_DEFAULT_SCOPES, ...input.extraScopes]);
  for (const row of [...input.accessTokens, ...input.refreshTokens]) {
    for (const scope of words(row.scope)) if (!OIDC.has(scope) && !scopeProblems([scope]).length) resourceScopes.add(scope);
  }
  const { resource, outcome } = await ensureDjangoResource(trx, input.resourceIdentifier, [...resourceScopes]);
  report.django_resource = { identifier: resource.identifier, scopes: resource.scopes, outcome };
  const offered = new Set(resource.scopes);
  const writer = writerFor(resource);

  const applications = new Map(input.applications.map((a) => [a.id, a]));
  const grants = new Map<string, string>();

  type Planned = { row: DjangoTokenRow; kind: 'access_token' | 'refresh_token'; counts: RowCounts };
  const planned: Planned[] = [
    ...input.accessTokens.map((row) => ({ row, kind: 'access_token' as const, counts: access })),
    ...input.refreshTokens.map((row) => ({ row, kind: 'refresh_token' as const, counts: refresh })),
  ];
  for (const { row, kind, counts } of planned) {
    const name = `user ${row.userId}, application ${row.applicationId}`;
    const skip = (reason: SkipReason) => {
      counts.skipped += 1;
      report.skipped.push({ kind, source_id: row.id, name, reason });
    };
    try {
      if (kind === 'access_token' && (row.expires ?? 0) <= input.now) { skip('expired'); continue; }
      if (kind === 'refresh_token' && row.revoked !== null) { skip('revoked'); continue; }
      if (await links.find(kind, row.id)) { counts.unchanged += 1; continue; }
      const app = applications.get(row.applicationId);
      if (!app) { skip('unknown_application'); continue; }
      if (!input.djangoUserIds.has(row.userId)) { skip('unknown_user'); continue; }
      const user = await links.find('user', row.userId);
      if (!user) { skip('user_not_imported'); continue; }
      const client = (await links.find('client', app.id)) ? input.clientScopes.get(app.clientId) : undefined;
      if (!client) { skip('client_not_imported'); continue; }
      const scopes = words(row.scope);
      if (!scopes.length) { skip('no_scope'); continue; }
      if (scopes.some((s) => scopeProblems([s]).length && !OIDC.has(s))) { skip('invalid_scope'); continue; }
      // Confinement: OpenID scopes only as far as the client's registration allows them,
      // the rest only as the Django resource's (never another resource's, never our REST API's).
      const oidcScope = scopes.filter((s) => OIDC.has(s) && client.has(s));
      const resourceScope = scopes.filter((s) => !OIDC.has(s) && offered.has(s));
      // On the import's transaction itself, not a savepoint: the writer's provider is built on it.
      const grantKey = `${row.userId}:${app.id}`;
      const earlier = grants.get(grantKey) ?? (await links.find('grant', grantKey))?.targetId;
      const grantId = await writer.grant({ accountId: user.targetId, clientId: app.clientId, oidcScope, resourceScope, ...(earlier ? { grantId: earlier } : {}) });
      grants.set(grantKey, grantId);
      await links.save('grant', grantKey, { targetId: grantId, sourceDigest: null });
      const token = { value: row.token, accountId: user.targetId, clientId: app.clientId, grantId, scope: [...oidcScope, ...resourceScope] };
      if (kind === 'access_token') await writer.accessToken({ ...token, expiresAt: row.expires ?? input.now });
      else await writer.refreshToken(token);
      await links.save(kind, row.id, { targetId: grantId, sourceDigest: null });
      counts.created += 1;
    } catch (error) {
      report.errors.push({ kind, source_id: row.id, name, message: (error as Error).message.split('\n')[0] ?? '' });
    }
  }
}

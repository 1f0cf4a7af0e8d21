import { API_SCOPE_DESCRIPTIONS, apiAudience } from '../../core/resources/built-in.js';
import type { Context } from 'koa';
import { BUILT_IN_CLIENT_IDS, clientJson, describeClient, SUPPORTED_GRANT_TYPES } from '../../core/clients/client-service.js';
import type { ClientRecord, NewClient, TokenEndpointAuthMethod } from '../../storage/clients.js';
import { DomainError } from '../../core/errors.js';
import { auditActorOf } from './admin-auth.js';
import { endpointsOf, snippetsFor } from './integration-help.js';
import { csrfOk, FORM_EXPIRED, formOf, lines, problem, problemOf, text, ticked, values, type AdminKit, type Problem } from './kit.js';

const DEFAULT_SCOPE = 'openid profile email offline_access';

/** Client authentication, keys and the PAR / request-object requirements, as typed. */
interface KeyFormValues {
  token_endpoint_auth_method: string;
  jwks: string;
  jwks_uri: string;
  require_pushed_authorization_requests: boolean;
  require_signed_request_object: boolean;
}

/** What a confidential client may choose; public clients always use `none`. */
const CONFIDENTIAL_AUTH_METHODS: readonly string[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];

const NO_KEYS: KeyFormValues = {
  token_endpoint_auth_method: 'client_secret_basic',
  jwks: '',
  jwks_uri: '',
  require_pushed_authorization_requests: false,
  require_signed_request_object: false,
};

function keyValuesOf(d: NewClient): KeyFormValues {
  return {
    token_endpoint_auth_method: d.tokenEndpointAuthMethod && d.tokenEndpointAuthMethod !== 'none' ? d.tokenEndpointAuthMethod : 'client_secret_basic',
    jwks: d.jwks ? JSON.stringify(d.jwks, null, 2) : '',
    jwks_uri: d.jwksUri ?? '',
    require_pushed_authorization_requests: d.requirePushedAuthorizationRequests === true,
    require_signed_request_object: d.requireSignedRequestObject === true,
  };
}

function typedKeyValues(body: Record<string, unknown>): KeyFormValues {
  return {
    token_endpoint_auth_method: text(body, 'token_endpoint_auth_method'),
    jwks: text(body, 'jwks'),
    jwks_uri: text(body, 'jwks_uri'),
    require_pushed_authorization_requests: ticked(body, 'require_pushed_authorization_requests'),
    require_signed_request_object: ticked(body, 'require_signed_request_object'),
  };
}

/** The service input for these fields; problems go into `fields`. */
function keyInputOf(v: AppFormValues, fields: Record<string, string[]>): Partial<NewClient> {
  const method = v.client_type === 'public' ? 'none' : v.token_endpoint_auth_method;
  if (method && method !== 'none' && !CONFIDENTIAL_AUTH_METHODS.includes(method)) fields['token_endpoint_auth_method'] = ['Choose how the application authenticates.'];
  let jwks: NewClient['jwks'] = null;
  if (v.jwks.trim()) {
    try {
      jwks = JSON.parse(v.jwks) as NewClient['jwks'];
    } catch {
      fields['jwks'] = ['Paste a JWK Set as JSON: {"keys": [...]}.'];
    }
  }
  return {
    ...(method ? { tokenEndpointAuthMethod: method as TokenEndpointAuthMethod } : {}),
    jwks,
    jwksUri: v.jwks_uri.trim() || null,
    requirePushedAuthorizationRequests: v.require_pushed_authorization_requests,
    requireSignedRequestObject: v.require_signed_request_object,
  };
}

/** The fields of the application form, as typed (textareas stay text so they come back as they were). */
interface AppFormValues extends KeyFormValues {
  name: string;
  redirect_uris: string;
  post_logout_redirect_uris: string;
  grant_types: string[];
  client_type: string;
  scope: string;
  /** RFC 9449 §5.2 checkbox: tokens only with a DPoP proof. */
  dpop_bound_access_tokens: boolean;
  /** Scopes of Latchkey's REST API the application may ask people for. */
  api_scopes: string[];
}

const GRANT_LABELS: Record<string, string> = {
  authorization_code: 'Authorization code (sign-in through the browser)',
  refresh_token: 'Refresh token (stay signed in)',
  client_credentials: 'Client credentials (machine to machine)',
  password: 'Password (legacy, first-party apps only)',
  'urn:ietf:params:oauth:grant-type:device_code': 'Device sign-in (TVs and command-line tools: people enter a code on another device)',
};

function valuesOf(client: ClientRecord): AppFormValues {
  const d = describeClient(client);
  return {
    name: d.name,
    redirect_uris: (d.redirectUris ?? []).join('\n'),
    post_logout_redirect_uris: (d.postLogoutRedirectUris ?? []).join('\n'),
    grant_types: d.grantTypes ?? [],
    client_type: d.isPublic ? 'public' : 'confidential',
    scope: d.scope ?? '',
    dpop_bound_access_tokens: d.dpopBoundAccessTokens === true,
    api_scopes: d.apiScopes ?? [],
    ...keyValuesOf(d),
  };
}

function typedValues(body: Record<string, unknown>): AppFormValues {
  return {
    name: text(body, 'name'),
    redirect_uris: text(body, 'redirect_uris'),
    post_logout_redirect_uris: text(body, 'post_logout_redirect_uris'),
    grant_types: values(body, 'grant_types'),
    client_type: text(body, 'client_type'),
    scope: text(body, 'scope'),
    dpop_bound_access_tokens: ticked(body, 'dpop_bound_access_tokens'),
    api_scopes: values(body, 'api_scopes'),
    ...typedKeyValues(body),
  };
}

/**
 * The problems of a one-URI-per-line textarea, each naming its line as people count them
 * (blank lines included), e.g. "line 2: not an absolute URL".
 */
export function uriLineProblems(text: string): string[] {
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (!line) return;
    const at = `line ${index + 1}`;
    if (!URL.canParse(line) || !/^[a-z][a-z0-9+.-]*:/i.test(line)) problems.push(`${at}: not an absolute URL (such as https://app.example.com/callback).`);
    else if (line.includes('#')) problems.push(`${at}: a redirect URI cannot have a #fragment.`);
  });
  return problems;
}

/** Checks what the service leaves to the form (type, at least one grant, a scope) and builds its input. */
function inputOf(v: AppFormValues): NewClient | Problem {
  const fields: Record<string, string[]> = {};
  if (!v.name.trim()) fields['name'] = ['A name is required.'];
  if (v.client_type !== 'public' && v.client_type !== 'confidential') fields['client_type'] = ['Choose public or confidential.'];
  if (v.grant_types.length === 0) fields['grant_types'] = ['Choose at least one grant type.'];
  const scope = v.scope.split(/\s+/).filter(Boolean).join(' ');
  if (!scope) fields['scope'] = ['Enter at least one scope, such as openid.'];
  for (const key of ['redirect_uris', 'post_logout_redirect_uris'] as const) {
    const problems = uriLineProblems(v[key]);
    if (problems.length) fields[key] = problems;
  }
  const keys = keyInputOf(v, fields);
  if (Object.keys(fields).length) return problem(400, 'Please correct the fields marked below.', fields);
  return {
    name: v.name.trim(),
    redirectUris: lines(v.redirect_uris),
    postLogoutRedirectUris: lines(v.post_logout_redirect_uris),
    grantTypes: [...new Set(v.grant_types)],
    isPublic: v.client_type === 'public',
    scope,
    dpopBoundAccessTokens: v.dpop_bound_access_tokens,
    apiScopes: [...new Set(v.api_scopes)],
    ...keys,
  };
}

const isProblem = (x: NewClient | Problem): x is Problem => 'status' in x;

/** The service's problem, with a refused redirect URI's message also next to that field. */
function formProblemOf(error: unknown): Problem {
  const p = problemOf(error);
  return error instanceof DomainError && error.code === 'invalid_redirect_uri' && !p.fields['redirect_uris'] ? { ...p, fields: { ...p.fields, redirect_uris: [p.message] } } : p;
}

/** Applications (OAuth clients): list, register, edit, rotate the secret, delete. */
export function addApplicationPages({ deps, router, page, requireStaff, form }: AdminKit): void {
  const { clientService } = deps;
  const grantChoices = SUPPORTED_GRANT_TYPES.map((value) => ({ value, label: GRANT_LABELS[value] ?? value }));
  const apiChoices = { apiScopeChoices: Object.entries(API_SCOPE_DESCRIPTIONS), apiResource: apiAudience(deps.publicUrl) };

  async function loadClient(ctx: Context): Promise<ClientRecord | undefined> {
    const id = String(ctx.params['id'] ?? '');
    const client = id.length <= 200 ? await clientService.get(id).catch(() => undefined) : undefined;
    if (!client) page(ctx, 'not-found', { title: 'No such application', back: '/admin/applications', what: 'application' }, 404);
    return client;
  }

  /** The one page that shows a secret: rendered directly (never after a redirect), never cached. */
  function showSecret(ctx: Context, client: ClientRecord, secret: string | null, reason: 'registered' | 'rotated' | 'confidential'): void {
    page(ctx, 'application-secret', { title: reason === 'registered' ? 'Application registered' : 'New client secret', client: clientJson(client), secret, reason });
  }

  router.get('/admin/applications', requireStaff, async (ctx) => {
    const clients = (await clientService.list()).map(clientJson);
    page(ctx, 'applications', { title: 'Applications', clients });
  });

  // ----- register -----
  const renderNew = (ctx: Context, v: AppFormValues, failure?: Problem) =>
    page(
      ctx,
      'application-form',
      { title: 'Register an application', mode: 'new', action: '/admin/applications/new', values: v, grantChoices, ...apiChoices, message: failure?.message ?? null, errors: failure?.fields ?? {} },
      failure?.status ?? 200,
    );

  router.get('/admin/applications/new', requireStaff, (ctx) =>
    renderNew(ctx, {
      name: '',
      redirect_uris: '',
      post_logout_redirect_uris: '',
      grant_types: ['authorization_code', 'refresh_token'],
      client_type: 'confidential',
      scope: DEFAULT_SCOPE,
      dpop_bound_access_tokens: false,
      api_scopes: [],
      ...NO_KEYS,
    }),
  );

  router.post('/admin/applications/new', requireStaff, form, async (ctx) => {
    const v = typedValues(formOf(ctx));
    if (!csrfOk(ctx)) return renderNew(ctx, v, problem(403, FORM_EXPIRED));
    const input = inputOf(v);
    if (isProblem(input)) return renderNew(ctx, v, input);
    try {
      const { client, clientSecret } = await clientService.register(input, auditActorOf(ctx));
      showSecret(ctx, client, clientSecret, 'registered');
    } catch (error) {
      renderNew(ctx, v, formProblemOf(error));
    }
  });

  // ----- edit, rotate -----
  const endpoints = endpointsOf(`${deps.publicUrl}/o`);
  const renderEdit = (ctx: Context, client: ClientRecord, v: AppFormValues, failure?: Problem) =>
    page(
      ctx,
      'application-form',
      {
        title: `Edit ${client.name}`,
        mode: 'edit',
        action: `/admin/applications/${encodeURIComponent(client.clientId)}`,
        client: clientJson(client),
        builtIn: BUILT_IN_CLIENT_IDS.has(client.clientId),
        // How to connect it: the provider's addresses and snippets with this client's values (as saved, not as typed).
        help: BUILT_IN_CLIENT_IDS.has(client.clientId) ? null : { endpoints, snippets: snippetsFor(clientJson(client), endpoints) },
        values: v,
        grantChoices,
        ...apiChoices,
        message: failure?.message ?? null,
        errors: failure?.fields ?? {},
      },
      failure?.status ?? 200,
    );

  router.get('/admin/applications/:id', requireStaff, async (ctx) => {
    const client = await loadClient(ctx);
    if (client) renderEdit(ctx, client, valuesOf(client));
  });

  router.post('/admin/applications/:id', requireStaff, form, async (ctx) => {
    const client = await loadClient(ctx);
    if (!client) return;
    const v = typedValues(formOf(ctx));
    if (!csrfOk(ctx)) return renderEdit(ctx, client, v, problem(403, FORM_EXPIRED));
    const input = inputOf(v);
    if (isProblem(input)) return renderEdit(ctx, client, v, input);
    try {
      const { client: updated, clientSecret } = await clientService.update(client.clientId, input, auditActorOf(ctx));
      if (clientSecret) return showSecret(ctx, updated, clientSecret, 'confidential');
      ctx.status = 303;
      const done = updated.isPublic && !client.isPublic ? 'app-public' : 'app-saved';
      ctx.redirect(`/admin/applications/${encodeURIComponent(updated.clientId)}?done=${done}`);
    } catch (error) {
      renderEdit(ctx, client, v, formProblemOf(error));
    }
  });

  router.post('/admin/applications/:id/rotate-secret', requireStaff, form, async (ctx) => {
    const client = await loadClient(ctx);
    if (!client) return;
    if (!csrfOk(ctx)) return renderEdit(ctx, client, valuesOf(client), problem(403, FORM_EXPIRED));
    if (!ticked(formOf(ctx), 'confirm')) {
      return renderEdit(ctx, client, valuesOf(client), problem(400, 'Tick the box to confirm that the current secret should stop working.'));
    }
    try {
      const { client: updated, clientSecret } = await clientService.rotateSecret(client.clientId, auditActorOf(ctx));
      showSecret(ctx, updated, clientSecret, 'rotated');
    } catch (error) {
      renderEdit(ctx, client, valuesOf(client), problemOf(error));
    }
  });

  // ----- delete -----
  const renderDelete = (ctx: Context, client: ClientRecord, failure?: Problem) =>
    page(
      ctx,
      'application-delete',
      { title: `Delete ${client.name}`, client: clientJson(client), message: failure?.message ?? null },
      failure?.status ?? 200,
    );

  router.get('/admin/applications/:id/delete', requireStaff, async (ctx) => {
    const client = await loadClient(ctx);
    if (client) renderDelete(ctx, client);
  });

  router.post('/admin/applications/:id/delete', requireStaff, form, async (ctx) => {
    const client = await loadClient(ctx);
    if (!client) return;
    if (!csrfOk(ctx)) return renderDelete(ctx, client, problem(403, FORM_EXPIRED));
    try {
      await clientService.remove(client.clientId, auditActorOf(ctx));
      ctx.status = 303;
      ctx.redirect('/admin/applications?done=app-deleted');
    } catch (error) {
      renderDelete(ctx, client, problemOf(error));
    }
  });
}

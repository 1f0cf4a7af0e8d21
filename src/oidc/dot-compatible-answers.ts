import type Provider from 'oidc-provider';

const CLIENT_ENDPOINTS = new Set(['token', 'introspection', 'revocation']);

/**
 * Two answers of the token endpoints as django-oauth-toolkit gave them, both what RFC 6749
 * says, so the clients of the service Latchkey replaces need no change:
 *
 * - no client authentication at all is `invalid_client` with 401 (RFC 6749 5.2: "no client
 *   authentication included"), not the library's 400 `invalid_request`;
 * - a client_credentials answer names its `scope`, also when it is empty (RFC 6749 5.1 lets
 *   it be left out only when it is what was asked for; DOT's clients read it).
 */
export function dotCompatibleAnswers(provider: Provider): void {
  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (!route || !CLIENT_ENDPOINTS.has(route) || !ctx.body || typeof ctx.body !== 'object') return;
    const body = ctx.body as Record<string, unknown>;
    if (ctx.status === 400 && body['error'] === 'invalid_request' && body['error_description'] === 'no client authentication mechanism provided') {
      ctx.status = 401;
      ctx.body = { error: 'invalid_client', error_description: 'client authentication is required' };
      return;
    }
    if (route === 'token' && ctx.status === 200 && ctx.oidc.params?.['grant_type'] === 'client_credentials' && typeof body['access_token'] === 'string' && !('scope' in body)) {
      body['scope'] = '';
    }
  });
}

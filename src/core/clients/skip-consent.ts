/**
 * Client metadata `skip_consent`: the person is not asked to allow the client's OpenID scopes
 * (an application imported from django-oauth-toolkit with `skip_authorization`). Set only by
 * the import; dynamic registration may keep it but never set it (src/oidc/provider.ts), or
 * any client could skip consent.
 */
export const SKIP_CONSENT_METADATA = 'skip_consent';

import type { clientJson } from '../../core/clients/client-service.js';

type ClientJson = ReturnType<typeof clientJson>;

/** The provider's addresses an application is configured with. */
export interface ProviderEndpoints {
  issuer: string;
  discovery: string;
  authorization: string;
  token: string;
  userinfo: string;
  jwks: string;
  endSession: string;
  introspection: string;
  revocation: string;
  deviceAuthorization: string;
}

/** The endpoints under the issuer (`${PUBLIC_URL}/o`), as discovery publishes them. */
export function endpointsOf(issuer: string): ProviderEndpoints {
  return {
    issuer,
    discovery: `${issuer}/.well-known/openid-configuration`,
    authorization: `${issuer}/auth`,
    token: `${issuer}/token`,
    userinfo: `${issuer}/me`,
    jwks: `${issuer}/jwks`,
    endSession: `${issuer}/session/end`,
    introspection: `${issuer}/token/introspection`,
    revocation: `${issuer}/token/revocation`,
    deviceAuthorization: `${issuer}/device/auth`,
  };
}

/** One copy-ready snippet: plain text, escaped by the template like everything else. */
export interface Snippet {
  id: string;
  title: string;
  note: string;
  code: string;
}

/** A single-quoted shell word: nothing inside is expanded. */
const sh = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;
/** A JavaScript or Python string literal (JSON's escapes are valid in both). */
const lit = (value: string) => JSON.stringify(value);
/** A double-quoted Apache directive argument. */
const apache = (value: string) => `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** Where the secret goes: never the secret itself (Latchkey keeps only its hash). */
const SECRET_ENV = 'LATCHKEY_CLIENT_SECRET';

/** The scopes to ask for at sign-in: what the client may have, the usual ones first. */
function signInScope(client: ClientJson): string {
  const allowed = client.scope.split(' ').filter(Boolean);
  const usual = ['openid', 'profile', 'email'].filter((s) => allowed.includes(s));
  return (usual.length ? usual : allowed).join(' ') || 'openid';
}

/**
 * Copy-ready configuration for the usual relying parties, filled with this client's real
 * values (its id, redirect URI, authentication method) and a placeholder for its secret.
 */
export function snippetsFor(client: ClientJson, e: ProviderEndpoints): Snippet[] {
  const isPublic = client.client_type === 'public';
  const method = client.token_endpoint_auth_method;
  const grants = client.grant_types;
  const signsIn = grants.includes('authorization_code');
  const redirect = client.redirect_uris[0] ?? 'https://app.example.com/callback';
  const scope = signInScope(client);
  const insecure = e.issuer.startsWith('http:');
  const snippets: Snippet[] = [];

  // ----- openid-client (Node, v6 API) -----
  const auth = isPublic
    ? 'client.None()'
    : method === 'client_secret_post'
      ? `client.ClientSecretPost(process.env.${SECRET_ENV})`
      : method === 'private_key_jwt'
        ? 'client.PrivateKeyJwt(privateKey) // your CryptoKey, its public part in the registered JWKS'
        : `client.ClientSecretBasic(process.env.${SECRET_ENV})`;
  const node = [
    "import * as client from 'openid-client';",
    '',
    'const config = await client.discovery(',
    `  new URL(${lit(e.issuer)}),`,
    `  ${lit(client.client_id)},`,
    '  undefined,',
    `  ${auth},`,
    ...(insecure ? ['  { execute: [client.allowInsecureRequests] }, // http: only for local testing'] : []),
    ');',
  ];
  if (signsIn) {
    node.push(
      '',
      '// 1. Send the browser to Latchkey (keep code_verifier in the session).',
      'const code_verifier = client.randomPKCECodeVerifier();',
      'const code_challenge = await client.calculatePKCECodeChallenge(code_verifier);',
      'const signInUrl = client.buildAuthorizationUrl(config, {',
      `  redirect_uri: ${lit(redirect)},`,
      `  scope: ${lit(scope)},`,
      '  code_challenge,',
      "  code_challenge_method: 'S256',",
      '});',
      '',
      '// 2. At the redirect URI: the full URL Latchkey sent the browser back to.',
      'const tokens = await client.authorizationCodeGrant(config, currentUrl, { pkceCodeVerifier: code_verifier });',
      'console.log(tokens.claims()); // sub, and the profile and email claims',
    );
  }
  if (grants.includes('client_credentials')) {
    node.push('', '// Machine to machine: a token for this application itself.', 'const { access_token } = await client.clientCredentialsGrant(config);');
  }
  snippets.push({ id: 'node', title: 'Node.js: openid-client', note: 'npm install openid-client (version 6).', code: node.join('\n') });

  // ----- Django: mozilla-django-oidc -----
  if (signsIn) {
    const django = [
      '# settings.py (pip install mozilla-django-oidc)',
      'import os',
      '',
      'INSTALLED_APPS += ["mozilla_django_oidc"]',
      'AUTHENTICATION_BACKENDS = ["mozilla_django_oidc.auth.OIDCAuthenticationBackend"]',
      '',
      `OIDC_RP_CLIENT_ID = ${lit(client.client_id)}`,
      isPublic ? 'OIDC_RP_CLIENT_SECRET = ""  # a public client has no secret' : `OIDC_RP_CLIENT_SECRET = os.environ["${SECRET_ENV}"]`,
      'OIDC_RP_SIGN_ALGO = "RS256"',
      `OIDC_RP_SCOPES = ${lit(scope)}`,
      'OIDC_USE_PKCE = True',
      // mozilla-django-oidc sends the secret in the body unless told to use HTTP Basic.
      ...(method === 'client_secret_basic' ? ['OIDC_TOKEN_USE_BASIC_AUTH = True  # this client authenticates with HTTP Basic'] : []),
      `OIDC_OP_AUTHORIZATION_ENDPOINT = ${lit(e.authorization)}`,
      `OIDC_OP_TOKEN_ENDPOINT = ${lit(e.token)}`,
      `OIDC_OP_USER_ENDPOINT = ${lit(e.userinfo)}`,
      `OIDC_OP_JWKS_ENDPOINT = ${lit(e.jwks)}`,
      'LOGIN_REDIRECT_URL = "/"',
      '',
      '# urls.py: path("oidc/", include("mozilla_django_oidc.urls"))',
      '# Register https://<your app>/oidc/callback/ as a redirect URI above.',
    ];
    snippets.push({ id: 'django', title: 'Django: mozilla-django-oidc', note: 'Users are matched by their verified email address.', code: django.join('\n') });
  }

  // ----- Apache mod_auth_openidc -----
  if (signsIn) {
    const httpd = [
      `OIDCProviderMetadataURL ${apache(e.discovery)}`,
      `OIDCClientID ${apache(client.client_id)}`,
      ...(isPublic ? [] : ['OIDCClientSecret "<client secret>"']),
      ...(isPublic ? ['OIDCProviderTokenEndpointAuth none'] : method === 'client_secret_post' || method === 'client_secret_basic' ? [`OIDCProviderTokenEndpointAuth ${method}`] : []),
      `OIDCRedirectURI ${apache(redirect)}`,
      'OIDCCryptoPassphrase "<a long random passphrase>"',
      `OIDCScope ${apache(scope)}`,
      'OIDCPKCEMethod S256',
      '',
      '<Location "/">',
      '  AuthType openid-connect',
      '  Require valid-user',
      '</Location>',
    ];
    snippets.push({
      id: 'apache',
      title: 'Apache: mod_auth_openidc',
      note: 'The redirect URI must be a path inside the protected location that the application itself does not serve.',
      code: httpd.join('\n'),
    });
  }

  // ----- curl -----
  const who = isPublic
    ? [`-d client_id=${sh(client.client_id)}`]
    : method === 'client_secret_post'
      ? [`-d client_id=${sh(client.client_id)}`, `-d client_secret="$${SECRET_ENV}"`]
      : method === 'private_key_jwt'
        ? ['-d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer', '-d client_assertion="$CLIENT_ASSERTION"']
        : [`-u ${sh(`${client.client_id}:`)}"$${SECRET_ENV}"`];
  const curl = ['# What Latchkey publishes', `curl ${sh(e.discovery)}`];
  if (grants.includes('client_credentials')) {
    curl.push('', '# A token for the application itself (client credentials)', `curl ${sh(e.token)} \\`, ...who.map((w) => `  ${w} \\`), '  -d grant_type=client_credentials');
  }
  if (signsIn) {
    curl.push(
      '',
      '# Exchange the code from the redirect for tokens',
      `curl ${sh(e.token)} \\`,
      ...who.map((w) => `  ${w} \\`),
      '  -d grant_type=authorization_code \\',
      '  -d code="$CODE" \\',
      '  -d code_verifier="$CODE_VERIFIER" \\',
      `  --data-urlencode redirect_uri=${sh(redirect)}`,
    );
  }
  curl.push('', '# Who the token belongs to', `curl -H "Authorization: Bearer $ACCESS_TOKEN" ${sh(e.userinfo)}`);
  snippets.push({ id: 'curl', title: 'curl', note: `Set ${isPublic ? '' : `${SECRET_ENV}, `}CODE and the other variables first.`, code: curl.join('\n') });

  return snippets;
}

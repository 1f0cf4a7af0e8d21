import * as oidc from 'openid-client';
import { beforeAll, expect, it } from 'vitest';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { authorizationRequest, authorize, discover, makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { ACCESS_TOKEN } from '../helpers/shapes.js';

/** The hidden inputs of the provider's auto-submitting form_post page. */
function formPostFields(html: string): { action: string; fields: Record<string, string> } {
  const form = /<form[^>]*method="post"[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) throw new Error(`no form_post form in page:\n${html.slice(0, 1500)}`);
  const fields: Record<string, string> = {};
  for (const input of (form[2] ?? '').matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) fields[input[1]!] = input[2]!;
  return { action: form[1]!, fields };
}

describeOnBackends('authorization response modes and RFC 9207 iss (%s)', (fx) => {
  let config: oidc.Configuration;
  let username: string;

  beforeAll(async () => {
    const made = await makeClient(fx.server.latchkey, { name: 'Modes' });
    config = await discover(fx.server.issuer, made.client.clientId, made.clientSecret);
    username = (await makeUser(fx.server.latchkey)).username;
  });

  it('returns code, state and iss in the query by default (response_mode=query)', async () => {
    const { callbackUrl, codeVerifier, state, nonce } = await authorize(config, new UserAgent(), { username, password: PASSWORD });
    expect(callbackUrl.searchParams.get('iss')).toBe(fx.server.issuer);
    expect(callbackUrl.searchParams.get('state')).toBe(state);
    expect(callbackUrl.hash).toBe('');
    const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
    expect(tokens.claims()?.iss).toBe(fx.server.issuer);
  });

  it('a callback whose iss is another issuer is refused by the client (mix-up defence)', async () => {
    const { callbackUrl, codeVerifier, state } = await authorize(config, new UserAgent(), { username, password: PASSWORD });
    callbackUrl.searchParams.set('iss', 'https://attacker.example/o');
    const error = (await oidc.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: codeVerifier, expectedState: state }).catch((e: unknown) => e)) as Error & { cause?: { message?: string } };
    expect(error).toBeInstanceOf(Error);
    expect(error.cause?.message ?? error.message).toMatch(/"iss"/);
  });

  it('returns the response in the fragment with response_mode=fragment', async () => {
    const { callbackUrl, codeVerifier, state, nonce } = await authorize(config, new UserAgent(), { username, password: PASSWORD }, { response_mode: 'fragment' });
    expect(callbackUrl.search).toBe('');
    const fragment = new URLSearchParams(callbackUrl.hash.slice(1));
    expect(fragment.get('iss')).toBe(fx.server.issuer);
    expect(fragment.get('state')).toBe(state);
    // What a browser app does with a fragment response: hand its parameters to the library.
    const asQuery = new URL(REDIRECT_URI);
    for (const [k, v] of fragment) asQuery.searchParams.set(k, v);
    const tokens = await oidc.authorizationCodeGrant(config, asQuery, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
    expect(tokens.access_token).toMatch(ACCESS_TOKEN);
  });

  it('POSTs the response to the redirect URI with response_mode=form_post, under a CSP that allows only its own script', async () => {
    const agent = new UserAgent();
    const { url, codeVerifier, state, nonce } = await authorizationRequest(config, { response_mode: 'form_post' });
    let { response, url: at } = await agent.follow(url);
    const login = formOf(await response.text(), '/login');
    let posted = await agent.postForm(new URL(login.action, at), { csrf: login.csrf, username, password: PASSWORD });
    ({ response, url: at } = await agent.follow(new URL(posted.headers.get('location')!, at)));
    const consent = formOf(await response.text(), '/confirm');
    posted = await agent.postForm(new URL(consent.action, at), { csrf: consent.csrf, decision: 'allow' });
    ({ response, url: at } = await agent.follow(new URL(posted.headers.get('location')!, at)));

    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src[^;]*'sha256-/);
    expect(csp).not.toContain("'unsafe-inline'");
    const page = formPostFields(await response.text());
    expect(page.action).toBe(REDIRECT_URI);
    expect(page.fields['iss']).toBe(fx.server.issuer);
    expect(page.fields['state']).toBe(state);

    // The browser's POST to the client, as the client's framework hands it to openid-client.
    const callback = new Request(page.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(page.fields).toString(),
    });
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
    expect(tokens.claims()?.sub).toBeTruthy();
  });

  it('refuses an unknown response_mode back to the client, before any page', async () => {
    const { url, state } = await authorizationRequest(config, { response_mode: 'web_message' });
    const { url: at } = await new UserAgent().follow(url, (u) => u.href.startsWith(REDIRECT_URI));
    expect(at.href.startsWith(REDIRECT_URI)).toBe(true);
    expect(at.searchParams.get('error')).toBe('unsupported_response_mode');
    expect(at.searchParams.get('state')).toBe(state);
  });
});

/**
 * OIDC Core 3.1.2.1 `ui_locales` and `acr_values` over real HTTP: the pages a person sees
 * speak the relying party's language (else the browser's, else English), and ID tokens say
 * how the person signed in. Discovery advertises exactly these.
 */
import * as oidc from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { MFA_ACR, PASSWORD_ACR } from '../../src/oidc/acr.js';
import { formOf, providerForm, UserAgent } from '../helpers/browserless.js';
import { authorizationRequest, authorize, discover, loginAndExchange, makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { OPAQUE_TOKEN } from '../helpers/shapes.js';

const XSS = '<script>alert(1)</script>';
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
const LOCKOUT_AFTER = 3;

/** A user agent whose every request names the browser's languages. */
class LanguageAgent extends UserAgent {
  constructor(private readonly acceptLanguage: string) {
    super();
  }

  override async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('accept-language', this.acceptLanguage);
    return super.fetch(url, { ...init, headers });
  }
}

const langOf = (html: string) => /<html lang="([^"]*)"/.exec(html)?.[1];
const h1Of = (html: string) => /<h1>([^<]*)<\/h1>/.exec(html)?.[1];
const alertOf = (html: string) => /<p class="alert" role="alert">([^<]*)<\/p>/.exec(html)?.[1];

describeOnBackends('ui_locales and acr_values (%s)', { LOGIN_MAX_FAILURES_PER_ACCOUNT: String(LOCKOUT_AFTER) }, (fx) => {
  let config: oidc.Configuration;

  beforeAll(async () => {
    const made = await makeClient(fx.server.latchkey, { name: 'Locale App' });
    config = await discover(fx.server.issuer, made.client.clientId, made.clientSecret);
  });

  const isCallback = (u: URL) => u.href.startsWith(REDIRECT_URI);

  /** Follows an authorization request to the login page. */
  async function openLogin(agent: UserAgent, params: Record<string, string> = {}, rp = config) {
    const { url } = await authorizationRequest(rp, params);
    const { response, url: at } = await agent.follow(url, isCallback);
    const html = await response.text();
    expect(response.status, html).toBe(200);
    expect(at.pathname).toMatch(/^\/interaction\/[^/]+$/);
    return { html, at, form: formOf(html, '/login') };
  }

  /** Signs in on an open login page and returns the page that follows (consent here). */
  async function signIn(agent: UserAgent, login: Awaited<ReturnType<typeof openLogin>>, username: string) {
    const posted = await agent.postForm(new URL(login.form.action, login.at), { csrf: login.form.csrf, username, password: PASSWORD });
    expect(posted.status).toBe(303);
    const { response } = await agent.follow(new URL(posted.headers.get('location')!, login.at), isCallback);
    return response.text();
  }

  describe('discovery', () => {
    it('advertises the page languages and the acr values Latchkey delivers', () => {
      const meta = config.serverMetadata();
      expect(meta.ui_locales_supported).toEqual(['en', 'fr']);
      expect(meta.acr_values_supported).toEqual([PASSWORD_ACR, MFA_ACR]);
      expect(meta.claims_supported).toEqual(expect.arrayContaining(['acr', 'amr']));
      // Only what works: no claims in other languages, no display modes.
      expect(meta.claims_locales_supported).toBeUndefined();
      expect(meta.display_values_supported).toBeUndefined();
    });
  });

  describe('ui_locales', () => {
    it('renders the login and consent pages in French for ui_locales=fr', async () => {
      const user = await makeUser(fx.server.latchkey);
      const agent = new UserAgent();
      const login = await openLogin(agent, { ui_locales: 'fr' });
      expect(langOf(login.html)).toBe('fr');
      expect(h1Of(login.html)).toBe('Se connecter');
      expect(login.html).toContain('pour continuer vers <strong>Locale App</strong>');
      expect(login.html).toContain('<title>Se connecter · Latchkey</title>');
      expect(login.html).toContain('Mot de passe');
      expect(login.html).toContain('>Mot de passe oublié\u00a0?</a>');

      const consent = await signIn(agent, login, user.username);
      expect(langOf(consent)).toBe('fr');
      expect(h1Of(consent)).toBe('Autoriser l’accès\u00a0?');
      for (const words of ['Vous connecter avec votre compte Latchkey', 'Voir votre nom et votre nom d’utilisateur', 'Voir votre adresse e-mail et si elle est vérifiée']) {
        expect(consent).toContain(words);
      }
      expect(consent).toContain('>Autoriser</button>');
      expect(consent).toContain('>Refuser</button>');
      expect(consent).not.toContain('Allow access');

      // The French pages finish the flow like the English ones.
      const form = formOf(consent, '/confirm');
      const allowed = await agent.postForm(new URL(form.action, fx.server.url), { csrf: form.csrf, decision: 'allow' });
      const { url } = await agent.follow(new URL(allowed.headers.get('location')!, fx.server.url), isCallback);
      expect(url.searchParams.get('code')).toMatch(OPAQUE_TOKEN);
    });

    it('names the claims asked for one by one in the page language', async () => {
      const user = await makeUser(fx.server.latchkey);
      const agent = new UserAgent();
      const claims = JSON.stringify({ id_token: { email: null, given_name: null } });
      const consent = await signIn(agent, await openLogin(agent, { ui_locales: 'fr', scope: 'openid', claims }), user.username);
      expect(consent).toContain('L’application demande aussi ces informations\u00a0: adresse e-mail, prénom.');
      const english = new UserAgent();
      const consentEn = await signIn(english, await openLogin(english, { scope: 'openid', claims }), user.username);
      expect(consentEn).toContain('It also asks for these details: email address, first name.');
    });

    it('takes the first supported tag of ui_locales, a region matching its language', async () => {
      const cases: Array<[string, string]> = [
        ['fr-CA en', 'fr'],
        ['FR', 'fr'],
        ['de', 'en'],
        ['de fr-BE', 'fr'],
        ['en fr', 'en'],
        ['de-DE es', 'en'],
      ];
      for (const [uiLocales, lang] of cases) {
        const { html } = await openLogin(new UserAgent(), { ui_locales: uiLocales });
        expect(langOf(html), uiLocales).toBe(lang);
        expect(h1Of(html), uiLocales).toBe(lang === 'fr' ? 'Se connecter' : 'Sign in');
      }
    });

    it('falls back to Accept-Language by q-value, then to English', async () => {
      const cases: Array<[string, string]> = [
        ['fr', 'fr'],
        ['fr-CH, fr;q=0.9, en;q=0.8', 'fr'],
        ['de-DE, fr;q=0.8, en;q=0.5', 'fr'],
        ['en;q=0.4, fr;q=0.9', 'fr'],
        ['en-GB, fr;q=0.9', 'en'],
        ['fr;q=0, de', 'en'],
        ['*', 'en'],
        ['de, es', 'en'],
      ];
      for (const [acceptLanguage, lang] of cases) {
        const { html } = await openLogin(new LanguageAgent(acceptLanguage));
        expect(langOf(html), acceptLanguage).toBe(lang);
      }
      // ui_locales comes first, a tag that matches nothing falls through to the browser's.
      expect(langOf((await openLogin(new LanguageAgent('fr'), { ui_locales: 'en' })).html)).toBe('en');
      expect(langOf((await openLogin(new LanguageAgent('fr'), { ui_locales: 'de' })).html)).toBe('fr');
    });

    it('still escapes the client name and login_hint in French', async () => {
      const hostile = await makeClient(fx.server.latchkey, { name: `Evil ${XSS}` });
      const hostileConfig = await discover(fx.server.issuer, hostile.client.clientId, hostile.clientSecret);
      const hint = `"><img src=x onerror=alert(1)>${XSS}`;
      const { html } = await openLogin(new UserAgent(), { ui_locales: 'fr', login_hint: hint }, hostileConfig);
      expect(langOf(html)).toBe('fr');
      expect(html).toContain('pour continuer vers <strong>Evil &lt;script&gt;alert(1)&lt;/script&gt;</strong>');
      expect(html).not.toContain(XSS);
      expect(html).not.toContain('<img');
    });

    it('says in French that the password is wrong, and that the account is locked', async () => {
      const user = await makeUser(fx.server.latchkey);
      const agent = new UserAgent();
      const login = await openLogin(agent, { ui_locales: 'fr' });
      const attempt = () => agent.postForm(new URL(login.form.action, login.at), { csrf: login.form.csrf, username: user.username, password: 'not the passphrase' });

      const wrong = await attempt();
      const html = await wrong.text();
      expect(wrong.status).toBe(401);
      expect(langOf(html)).toBe('fr');
      expect(alertOf(html)).toBe('Nom d’utilisateur ou mot de passe incorrect.');

      let locked: Response | undefined;
      for (let i = 1; i <= LOCKOUT_AFTER && !locked; i++) {
        const answer = await attempt();
        if (answer.status === 429) locked = answer;
        else expect(answer.status).toBe(401);
      }
      expect(locked?.status).toBe(429);
      const lockedHtml = await locked!.text();
      expect(alertOf(lockedHtml)).toMatch(/^Trop de tentatives de connexion échouées\. Réessayez dans \d+ minutes?\.$/);
    });

    it('says in French that a form has expired (CSRF)', async () => {
      const agent = new UserAgent();
      const login = await openLogin(agent, { ui_locales: 'fr' });
      const posted = await agent.postForm(new URL(login.form.action, login.at), { csrf: 'forged', username: 'someone', password: PASSWORD });
      expect(posted.status).toBe(403);
      expect(alertOf(await posted.text())).toBe('Ce formulaire a expiré. Veuillez réessayer.');
    });

    it('shows the expired sign-in and the provider error pages in the person’s language', async () => {
      const expired = await new LanguageAgent('fr-FR').fetch(`${fx.server.url}/interaction/no-such-interaction`);
      const expiredHtml = await expired.text();
      expect(expired.status).toBe(400);
      expect(langOf(expiredHtml)).toBe('fr');
      expect(h1Of(expiredHtml)).toBe('Connexion expirée');

      // An authorization request the provider refuses itself (unregistered redirect_uri).
      const { url } = await authorizationRequest(config, { ui_locales: 'fr', redirect_uri: 'https://evil.example/cb' });
      const refused = await new UserAgent().fetch(url);
      const refusedHtml = await refused.text();
      expect(refused.status).toBe(400);
      expect(refused.headers.get('location')).toBeNull();
      expect(langOf(refusedHtml)).toBe('fr');
      expect(h1Of(refusedHtml)).toBe('Une erreur s’est produite');
      expect(refusedHtml).toContain('Code d’erreur');

      const english = await new UserAgent().fetch(url.href.replace('ui_locales=fr', 'ui_locales=en'));
      expect(h1Of(await english.text())).toBe('Something went wrong');
    });

    it('asks to sign out in the language of the logout request', async () => {
      const user = await makeUser(fx.server.latchkey);
      const agent = new UserAgent();
      const { tokens } = await loginAndExchange(config, agent, { username: user.username, password: PASSWORD });
      const end = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, ui_locales: 'fr-CA' });
      const page = await (await agent.fetch(end)).text();
      expect(langOf(page)).toBe('fr');
      expect(h1Of(page)).toBe('Se déconnecter\u00a0?');
      expect(page).toContain('Voulez-vous vous déconnecter de Latchkey et de <strong>Locale App</strong>\u00a0?');

      // The signed-out page comes after the session is gone: it follows the browser's language.
      const form = providerForm(page, 'op.logoutForm');
      const confirmed = await agent.postForm(new URL(form.action, fx.server.url), { ...form.fields, logout: 'yes' });
      expect(confirmed.status).toBe(303);
      const done = await agent.fetch(new URL(confirmed.headers.get('location')!, fx.server.url), { headers: { 'accept-language': 'fr' } });
      const doneHtml = await done.text();
      expect(langOf(doneHtml)).toBe('fr');
      expect(h1Of(doneHtml)).toBe('Déconnecté');
    });

    it('speaks French on the device pages when the device asked for ui_locales=fr', async () => {
      const user = await makeUser(fx.server.latchkey);
      const tv = await makeClient(fx.server.latchkey, { name: 'Télé du salon', isPublic: true, redirectUris: [], grantTypes: [DEVICE_CODE] });
      const tvConfig = await discover(fx.server.issuer, tv.client.clientId, null);
      const device = await oidc.initiateDeviceAuthorization(tvConfig, { scope: 'openid', ui_locales: 'fr' });
      const polling = oidc.pollDeviceAuthorizationGrant(tvConfig, device);

      // The code entry page knows nothing of the device yet: it goes by the browser.
      const agent = new LanguageAgent('fr');
      const input = await (await agent.fetch(`${fx.server.issuer}/device`)).text();
      expect(langOf(input)).toBe('fr');
      expect(input).toContain('Saisissez le code affiché sur votre appareil.');
      expect(input).toContain('placeholder="Saisir le code"');
      expect(input).not.toContain('onfocus=');

      // From here on the device's own ui_locales decides, whatever the browser says.
      const english = new LanguageAgent('en');
      const entry = providerForm(await (await english.fetch(`${fx.server.issuer}/device`)).text(), 'op.deviceInputForm');
      const confirmPage = await (await english.postForm(new URL(entry.action, fx.server.url), { ...entry.fields, user_code: device.user_code })).text();
      expect(langOf(confirmPage)).toBe('fr');
      expect(h1Of(confirmPage)).toBe('Connecter Télé du salon\u00a0?');
      const confirm = providerForm(confirmPage, 'op.deviceConfirmForm');
      const confirmed = await english.postForm(new URL(confirm.action, fx.server.url), confirm.fields);
      let { response, url } = await english.follow(new URL(confirmed.headers.get('location')!, fx.server.url));
      const login = await response.text();
      expect(h1Of(login)).toBe('Se connecter');
      const loginForm = formOf(login, '/login');
      const posted = await english.postForm(new URL(loginForm.action, url), { csrf: loginForm.csrf, username: user.username, password: PASSWORD });
      ({ response, url } = await english.follow(new URL(posted.headers.get('location')!, url)));
      const consent = await response.text();
      expect(h1Of(consent)).toBe('Autoriser l’accès\u00a0?');
      const consentForm = formOf(consent, '/confirm');
      const allowed = await english.postForm(new URL(consentForm.action, url), { csrf: consentForm.csrf, decision: 'allow' });
      ({ response } = await english.follow(new URL(allowed.headers.get('location')!, url)));
      const success = await response.text();
      expect(langOf(success)).toBe('fr');
      expect(h1Of(success)).toBe('Appareil connecté');
      expect(success).toContain('<strong>Télé du salon</strong> est maintenant connecté.');

      const tokens = await polling;
      expect(tokens.claims()?.acr).toBe(PASSWORD_ACR);
      expect(tokens.claims()?.amr).toEqual(['pwd']);
    });

    it('says in French that a device code is wrong', async () => {
      const agent = new LanguageAgent('fr');
      const entry = providerForm(await (await agent.fetch(`${fx.server.issuer}/device`)).text(), 'op.deviceInputForm');
      const page = await (await agent.postForm(new URL(entry.action, fx.server.url), { ...entry.fields, user_code: 'BBBB-BBBB' })).text();
      expect(langOf(page)).toBe('fr');
      expect(alertOf(page)).toBe('Ce code n’est pas valide, ou il a expiré ou déjà servi. Vérifiez le code et réessayez.');
    });
  });

  describe('acr_values', () => {
    const login = async () => ({ username: (await makeUser(fx.server.latchkey)).username, password: PASSWORD });

    it('puts the password acr and amr into the ID token when acr_values asks for it', async () => {
      const { tokens } = await loginAndExchange(config, new UserAgent(), await login(), { acr_values: PASSWORD_ACR });
      expect(tokens.claims()?.acr).toBe(PASSWORD_ACR);
      expect(tokens.claims()?.amr).toEqual(['pwd']);
    });

    it('says how the person signed in also without acr_values, and after a refresh', async () => {
      const { tokens } = await loginAndExchange(config, new UserAgent(), await login());
      expect(tokens.claims()?.acr).toBe(PASSWORD_ACR);
      expect(tokens.claims()?.amr).toEqual(['pwd']);
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      expect(refreshed.claims()?.acr).toBe(PASSWORD_ACR);
      expect(refreshed.claims()?.amr).toEqual(['pwd']);
    });

    it('answers voluntary acr_values it cannot meet with the acr it has (the RP decides)', async () => {
      const { tokens } = await loginAndExchange(config, new UserAgent(), await login(), { acr_values: 'urn:example:acr:mfa' });
      expect(tokens.claims()?.acr).toBe(PASSWORD_ACR);
    });

    it('meets an essential acr it can deliver', async () => {
      const claims = JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:example:acr:mfa', PASSWORD_ACR] } } });
      const { tokens } = await loginAndExchange(config, new UserAgent(), await login(), { claims });
      expect(tokens.claims()?.acr).toBe(PASSWORD_ACR);
    });

    it('refuses an essential acr it cannot deliver, with or without a session, and never shows a login form', async () => {
      const agent = new UserAgent();
      for (const acr of [{ essential: true, values: ['urn:example:acr:mfa'] }, { essential: true, value: 'urn:example:acr:mfa' }]) {
        const request = await authorizationRequest(config, { claims: JSON.stringify({ id_token: { acr } }) });
        const { response, url } = await agent.follow(request.url, isCallback);
        expect(isCallback(url), await response.text()).toBe(true);
        expect(url.searchParams.get('error')).toBe('unmet_authentication_requirements');
        expect(url.searchParams.get('state')).toBe(request.state);
        expect(url.searchParams.get('code')).toBeNull();
      }
      // Signed in with a password already: still refused, no loop of login pages.
      await authorize(config, agent, await login());
      const request = await authorizationRequest(config, { claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:example:acr:mfa'] } } }) });
      const { url } = await agent.follow(request.url, isCallback);
      expect(url.searchParams.get('error')).toBe('unmet_authentication_requirements');
    });
  });
});

import { describe, expect, it } from 'vitest';
import { chooseLocale, fromAcceptLanguage, fromUiLocales, translator } from '../../src/locales/i18n.js';
import { acrForLogin, essentialAcrUnattainable, MFA_ACR, PASSWORD_ACR } from '../../src/oidc/acr.js';

describe('choosing the page language', () => {
  it('takes the first supported ui_locales tag, a region matching its language', () => {
    expect(fromUiLocales('fr-CA en')).toBe('fr');
    expect(fromUiLocales('de  fr')).toBe('fr');
    expect(fromUiLocales('EN-us fr')).toBe('en');
    expect(fromUiLocales('de')).toBeUndefined();
    expect(fromUiLocales('french')).toBeUndefined();
    expect(fromUiLocales(['fr'])).toBeUndefined();
    expect(fromUiLocales(undefined)).toBeUndefined();
  });

  it('ranks Accept-Language by q-value, then by order, and ignores q=0 and *', () => {
    expect(fromAcceptLanguage('en;q=0.5, fr;q=0.8')).toBe('fr');
    expect(fromAcceptLanguage('fr-CH, en;q=0.9')).toBe('fr');
    expect(fromAcceptLanguage('de, en, fr')).toBe('en');
    expect(fromAcceptLanguage('fr;q=0, de')).toBeUndefined();
    expect(fromAcceptLanguage('fr;q=abc')).toBeUndefined();
    expect(fromAcceptLanguage('*')).toBeUndefined();
    expect(fromAcceptLanguage('')).toBeUndefined();
    expect(fromAcceptLanguage(undefined)).toBeUndefined();
  });

  it('prefers ui_locales, then Accept-Language, then English', () => {
    expect(chooseLocale({ uiLocales: 'en', acceptLanguage: 'fr' })).toBe('en');
    expect(chooseLocale({ uiLocales: 'de', acceptLanguage: 'fr' })).toBe('fr');
    expect(chooseLocale({ uiLocales: 'de', acceptLanguage: 'es' })).toBe('en');
    expect(chooseLocale({})).toBe('en');
  });
});

describe('messages', () => {
  it('fills placeholders as plain text, and as escaped bold HTML', () => {
    const fr = translator('fr');
    expect(fr.t('device.confirm.heading', { client: '<b>TV</b>' })).toBe('Connecter <b>TV</b>\u00a0?');
    expect(fr.strong('login.lead', { client: '<script>"x"</script>' })).toBe(
      'pour continuer vers <strong>&lt;script&gt;&quot;x&quot;&lt;/script&gt;</strong>',
    );
    expect(translator('en').strong('login.lead', { client: 'A & B' })).toBe('to continue to <strong>A &amp; B</strong>');
  });
});

describe('essential acr', () => {
  it('is unattainable only when essential and none of the accepted values is ours', () => {
    expect(essentialAcrUnattainable({ acr: { essential: true, values: ['urn:x:mfa'] } })).toBe(true);
    expect(essentialAcrUnattainable({ acr: { essential: true, value: 'urn:x:mfa' } })).toBe(true);
    expect(essentialAcrUnattainable({ acr: { essential: true, values: ['urn:x:mfa', PASSWORD_ACR] } })).toBe(false);
    expect(essentialAcrUnattainable({ acr: { essential: true, value: PASSWORD_ACR } })).toBe(false);
    expect(essentialAcrUnattainable({ acr: { values: ['urn:x:mfa'] } })).toBe(false);
    expect(essentialAcrUnattainable({ acr: { essential: true } })).toBe(false);
    expect(essentialAcrUnattainable({})).toBe(false);
    expect(essentialAcrUnattainable(undefined)).toBe(false);
    expect(essentialAcrUnattainable({ acr: { essential: true, value: MFA_ACR } })).toBe(false);
  });

  it('gives a login the strongest acr it achieved that an essential request accepts', () => {
    expect(acrForLogin(undefined, { secondFactor: false })).toBe(PASSWORD_ACR);
    expect(acrForLogin(undefined, { secondFactor: true })).toBe(MFA_ACR);
    expect(acrForLogin({ acr: { values: [MFA_ACR] } }, { secondFactor: false })).toBe(PASSWORD_ACR);
    expect(acrForLogin({ acr: { essential: true, values: [MFA_ACR] } }, { secondFactor: false })).toBeUndefined();
    expect(acrForLogin({ acr: { essential: true, value: MFA_ACR } }, { secondFactor: true })).toBe(MFA_ACR);
    expect(acrForLogin({ acr: { essential: true, values: [PASSWORD_ACR] } }, { secondFactor: true })).toBe(PASSWORD_ACR);
    expect(acrForLogin({ acr: { essential: true, values: [PASSWORD_ACR, MFA_ACR] } }, { secondFactor: true })).toBe(MFA_ACR);
  });
});

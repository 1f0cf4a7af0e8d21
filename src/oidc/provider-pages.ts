import type { KoaContextWithOIDC } from 'oidc-provider';
import { chooseLocale, escapeHtml, translator, type Locale, type Translator } from '../locales/i18n.js';

/** Renders a page template (the web edge's views satisfy it; the oidc layer does not import them). */
export interface PageRenderer {
  render(name: string, data: Record<string, unknown>, locale?: Locale): string;
}

/**
 * The language of a page the provider renders: the request's `ui_locales` (authorization and
 * logout requests carry it; on the device pages it comes from the device's own request),
 * else the browser's Accept-Language. The logged-out page follows the session's end, which
 * keeps no parameters, so it goes by Accept-Language alone.
 */
export function providerPageTranslator(ctx: KoaContextWithOIDC): Translator {
  const uiLocales = ctx.oidc?.params?.['ui_locales'] ?? ctx.oidc?.entities?.DeviceCode?.params?.['ui_locales'];
  return translator(chooseLocale({ uiLocales, acceptLanguage: ctx.get('accept-language') }));
}

/**
 * The provider's code input form in the page's language, without its inline onfocus
 * handler: our CSP allows no inline script, so browsers refuse it and log a violation.
 */
export function deviceInputForm(form: string, i18n: Translator): string {
  const label = escapeHtml(i18n.t('device.input.placeholder'));
  return form.replace(/ onfocus="[^"]*"/, '').replace('placeholder="Enter code"', `placeholder="${label}" aria-label="${label}"`);
}

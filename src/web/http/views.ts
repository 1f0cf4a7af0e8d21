import { Eta } from 'eta';
import { VIEWS_DIR } from '../../paths.js';
import { DEFAULT_LOCALE, translator, type Locale } from '../../locales/i18n.js';

/**
 * Server-side templates from views/, HTML-escaped by default (`<%= %>`), cached. Every view
 * gets `it.i18n`, the messages of `locale` (English unless the page chose another).
 */
export type Views = { render(name: string, data: Record<string, unknown>, locale?: Locale): string };

export function createViews({ cache = true }: { cache?: boolean } = {}): Views {
  const eta = new Eta({ views: VIEWS_DIR, autoEscape: true, cache, autoTrim: false });
  return {
    render(name, data, locale = DEFAULT_LOCALE) {
      return eta.render(name, { ...data, i18n: translator(locale) });
    },
  };
}

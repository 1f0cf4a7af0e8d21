import type { Context } from 'koa';
import { chooseLocale, translator, type Translator } from '../../locales/i18n.js';

/** The language of a front-door page: the browser's Accept-Language (no relying party to ask). */
export function browserTranslator(ctx: Context): Translator {
  return translator(chooseLocale({ acceptLanguage: ctx.get('accept-language') }));
}

/** True when the caller is a browser (which names text/html explicitly), not an API client. */
export function wantsHtml(ctx: Context): boolean {
  return (ctx.get('accept') ?? '').includes('text/html');
}

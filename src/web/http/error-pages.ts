import type { Context, Middleware } from 'koa';
import { ApiError } from '../../errors.js';
import { chooseLocale, translator } from '../../locales/i18n.js';
import { DRF_NOT_FOUND } from './error-mapping.js';
import type { Views } from './views.js';

/** REST paths (and the older provider's): always JSON, whatever the Accept header says. */
const API_PATH = /^\/(api|auth|users)(\/|$)/;

/** True when the answer should be a page: a browser (it names text/html) outside the API paths. */
export function answersWithPage(ctx: Context): boolean {
  return !API_PATH.test(ctx.path) && (ctx.get('accept') ?? '').includes('text/html');
}

/**
 * A styled error page in the browser's language: 404 and 405 have their own words, 5xx a
 * generic sentence (never a stack trace or the error's message), other statuses `description`.
 */
export function renderErrorPage(ctx: Context, views: Views, status: number, code: string, description: string): string {
  const i18n = translator(chooseLocale({ acceptLanguage: ctx.get('accept-language') }));
  const [title, lead] =
    status === 404
      ? [i18n.t('errorPage.notFound.title'), i18n.t('errorPage.notFound.lead')]
      : status === 405
        ? [i18n.t('errorPage.methodNotAllowed.title'), i18n.t('errorPage.methodNotAllowed.lead', { method: ctx.method })]
        : [i18n.t('error.title'), status >= 500 ? i18n.t('errorPage.server.lead') : description];
  return views.render('error-page', { title, lead, error: code }, i18n.locale);
}

/** What an unrouted request gets as JSON: DRF's words in `detail`, as the REST API answers. */
function unroutedError(ctx: Context): ApiError {
  if (ctx.status === 404) return new ApiError(404, 'not_found', `Nothing is served at ${ctx.path}.`, undefined, DRF_NOT_FOUND);
  if (ctx.status === 405) {
    const allow = ctx.response.get('Allow');
    return new ApiError(405, 'method_not_allowed', `${ctx.method} is not allowed here${allow ? ` (allowed: ${allow})` : ''}.`, undefined, `Method "${ctx.method}" not allowed.`);
  }
  return new ApiError(ctx.status, 'not_implemented', `${ctx.method} is not supported.`);
}

/**
 * Requests no route answered (Koa's bare "Not Found", the routers' "Method Not Allowed" and
 * "Not Implemented"): a styled page for browsers, the API's JSON error for everyone else.
 * Only empty answers are touched: every route's own body stays as it was.
 */
export function unroutedErrors(views: Views): Middleware {
  return async (ctx, next) => {
    await next();
    if (ctx.body != null || ctx.status < 400) return;
    const error = unroutedError(ctx);
    ctx.set('Cache-Control', 'no-store');
    if (answersWithPage(ctx)) {
      const status = ctx.status;
      ctx.type = 'html';
      ctx.body = renderErrorPage(ctx, views, status, error.error, error.message);
      ctx.status = status;
    } else {
      const status = ctx.status;
      ctx.body = error.toJSON();
      ctx.status = status;
    }
  };
}

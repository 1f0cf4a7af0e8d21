import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { SignedIn } from '../../oidc/first-party-pages.js';
import { chooseLocale, translator, type MessageKey, type Translator } from '../../locales/i18n.js';
import type { AccountCenterDeps } from './center.js';
import type { Problem } from './problems.js';

/** Where the two-factor pages are (two-factor-pages.ts). */
export const TWO_FACTOR_PATH = '/account/two-factor';

/** Which entry of the account nav a page belongs to. */
export type AccountSection = 'profile' | 'password' | 'twoFactor' | 'applications' | 'sessions' | 'delete';

/** What every group of account pages is built from. */
export interface AccountKit {
  deps: AccountCenterDeps;
  router: Router;
  /**
   * Renders views/account/<view>.eta inside the account layout (nav, "signed in as"), in
   * the browser's language, never cached. After a `failure`, with its status, message,
   * field messages and Retry-After.
   */
  page: (ctx: Context, section: AccountSection, view: string, data: Record<string, unknown>, failure?: Problem) => void;
  /** A page without the account nav (views/account/message.eta), for when there is no account to show. */
  message: (ctx: Context, status: number, data: { title: string; lead?: string; problem?: string; link?: { href: string; text: string } }) => void;
  /** Signed-in, active people only: others go to the login page (GET) or get a 401 page. */
  requireAccount: Middleware;
  /** Parses an urlencoded form body into `ctx.request.body`. */
  form: Middleware;
}

/** The person behind this request and their login session (set by `requireAccount`). */
export function accountOf(ctx: Context): SignedIn {
  return ctx.state['account'] as SignedIn;
}

/** The account pages speak the browser's language (Accept-Language), else English. */
export function i18nOf(ctx: Context): Translator {
  return translator(chooseLocale({ acceptLanguage: ctx.get('accept-language') }));
}

/**
 * Notices shown after a redirect (`?done=<code>`): a fixed message per code, so nothing from
 * the query string reaches the page.
 */
const NOTICES = {
  'profile-saved': 'notice.profileSaved',
  'profile-saved-verify': 'notice.profileSavedVerify',
  'verification-sent': 'notice.verificationSent',
  'password-changed': 'notice.passwordChanged',
  'app-revoked': 'notice.appRevoked',
  'session-ended': 'notice.sessionEnded',
  'two-factor-off': 'notice.twoFactorOff',
} as const satisfies Record<string, MessageKey>;

export type NoticeCode = keyof typeof NOTICES;

export function noticeFor(ctx: Context, i18n: Translator): string | null {
  const code = ctx.query['done'];
  const key = typeof code === 'string' && Object.hasOwn(NOTICES, code) ? NOTICES[code as NoticeCode] : undefined;
  return key ? i18n.t(key) : null;
}

/** After a successful POST: 303 to the page, with the notice to show there. */
export function doneRedirect(ctx: Context, path: string, code: NoticeCode): void {
  ctx.status = 303;
  ctx.redirect(`${path}?done=${code}`);
}

/** A moment as people read it, in the page's language, to the minute, in UTC. */
export function formatWhen(i18n: Translator): (at: number | string | null) => string {
  const format = new Intl.DateTimeFormat(i18n.locale, { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' });
  return (at) => (at === null ? '' : i18n.t('account.when', { date: format.format(new Date(at)) }));
}

import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { problemOf as pageProblemOf, type Problem } from '../http/page-problem.js';
import type { AdminDeps } from './routes.js';

// The form helpers every group of pages uses, where the admin pages have always found them.
export { csrfOk, formOf, formParser, text } from '../http/forms.js';
export { problem, type Problem } from '../http/page-problem.js';

/** What every group of admin pages is built from. */
export interface AdminKit {
  deps: AdminDeps;
  router: Router;
  /** Renders views/admin/<view>.eta inside the admin layout, never cached. */
  page: (ctx: Context, view: string, data: Record<string, unknown>, status?: number) => void;
  /** Staff only: others get 403, people not signed in the login page (GET) or 401. */
  requireStaff: Middleware;
  /** Parses an urlencoded form body (64 kB at most) into `ctx.request.body`. */
  form: Middleware;
}

/** Shown when a form's CSRF token does not match this browser's cookie. */
export const FORM_EXPIRED = 'This form has expired or was sent from another page. Nothing was changed; please try again.';

/**
 * Notices shown after a redirect (`?done=<code>`): a fixed message per code, so nothing from
 * the query string reaches the page.
 */
const NOTICES: Record<string, string> = {
  'user-created': 'The user was created.',
  'user-saved': 'The user was saved.',
  'password-set': 'The password was changed. Every session and token of that user has been revoked.',
  'user-deleted': 'The user was deleted, together with every session and token issued to them.',
  'two-factor-reset': 'Two-factor authentication was turned off for this user: their authenticator and recovery codes no longer work, and they sign in with their password alone until they enroll again.',
  'app-saved': 'The application was saved.',
  'app-public': 'The application is now public: its secret was removed and the tokens it was issued were revoked.',
  'app-deleted': 'The application was deleted and every token issued to it revoked.',
  'resource-created': 'The API resource was added. Applications may now ask for tokens for it.',
  'resource-saved': 'The API resource was saved. Tokens issued before keep their scopes and lifetime until they expire.',
  'resource-deleted': 'The API resource was deleted. No new tokens are issued for it; tokens issued before work until they expire.',
  'group-created': 'The group was added.',
  'group-saved': 'The group was saved. Tokens issued from now on carry it as it is; access tokens issued before keep what they carry until they expire.',
  'group-members-saved': 'The members were saved.',
  'user-groups-saved': 'The user\'s groups were saved. Tokens issued from now on carry them.',
  'group-deleted': 'The group was deleted and its members left it.',
  'session-ended': 'The session was ended: that browser is signed out, and tokens issued through it without offline access stop working.',
  'app-revoked': 'The application\'s access was revoked: its tokens for this user no longer work, and it must ask again.',
  'keys-rotated': 'New signing keys are in use. The previous keys stay published until the tokens they signed have expired.',
};

export function noticeFor(ctx: Context): string | null {
  const code = ctx.query['done'];
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(NOTICES, code) ? (NOTICES[code] ?? null) : null;
}

/** A checkbox: present (with any single value) means ticked. */
export function ticked(body: Record<string, unknown>, key: string): boolean {
  return typeof body[key] === 'string';
}

/** Every value sent for a repeated field (checkbox groups). */
export function values(body: Record<string, unknown>, key: string): string[] {
  const value = body[key];
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** One entry per non-empty line of a textarea. */
export function lines(value: string): string[] {
  return value
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean);
}

/** Maps the services' errors to a status and messages (English: the admin pages stay English); anything else is not ours to show. */
export function problemOf(error: unknown): Problem {
  return pageProblemOf(error);
}

/** Timestamps as people read them in a list: UTC, to the minute. */
export function when(ms: number | null): string {
  if (ms === null) return '';
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** Just the (UTC) day, for columns where the time does not matter. */
export function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Grant types in words, as lists show them (never the `urn:` of the device grant). */
const GRANT_NAMES: Record<string, string> = {
  authorization_code: 'Authorization code',
  refresh_token: 'Refresh token',
  client_credentials: 'Client credentials',
  'urn:ietf:params:oauth:grant-type:device_code': 'Device sign-in',
  password: 'Password',
};

export function grantName(grantType: string): string {
  return GRANT_NAMES[grantType] ?? grantType;
}

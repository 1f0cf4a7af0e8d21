import { adminLogin } from './admin.js';
import type { UserAgent } from './browserless.js';

/**
 * Signs a browser into the account center the way a person does: the page sends it to the
 * login page, the form is filled in, the provider sends it back (the admin pages' sign-in,
 * through the account center's own client).
 */
export function accountLogin(baseUrl: string, agent: UserAgent, username: string, password: string, path = '/account/') {
  return adminLogin(baseUrl, agent, username, password, path);
}

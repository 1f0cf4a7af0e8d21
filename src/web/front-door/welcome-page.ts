import Router from '@koa/router';
import type { InitialSetup } from '../../core/accounts/initial-setup.js';
import type { Views } from '../http/views.js';
import { browserTranslator, wantsHtml } from './locale.js';

export interface WelcomeDeps {
  views: Views;
  issuer: string;
  publicUrl: string;
  allowRegistration: boolean;
  initialSetup: InitialSetup;
}

/**
 * The front door at `/`: for a browser, what this server is, its issuer and discovery URL,
 * and the ways in (sign in, sign up when open, the admin pages), plus a word on the setup
 * link while no administrator exists. Scripts (no text/html in Accept) keep the redirect to
 * the discovery document they got before.
 */
export function createWelcomeRouter({ views, issuer, publicUrl, allowRegistration, initialSetup }: WelcomeDeps): Router {
  const router = new Router();
  const discoveryUrl = `${issuer}/.well-known/openid-configuration`;

  router.get('/', async (ctx) => {
    if (!wantsHtml(ctx)) return ctx.redirect('/o/.well-known/openid-configuration');
    const i18n = browserTranslator(ctx);
    const noAdmin = (await initialSetup.state(undefined)) !== 'done';
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render('welcome', { issuer, discoveryUrl, openApiUrl: `${publicUrl}/api/openapi.json`, allowRegistration, noAdmin }, i18n.locale);
  });

  return router;
}

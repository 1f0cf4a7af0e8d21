import { formOf, UserAgent } from './browserless.js';

/**
 * Signs a browser into the admin pages the way a person does: /admin/ sends it to the login
 * page, the form is filled in, and the provider sends it back. Returns the final response.
 */
export async function adminLogin(baseUrl: string, agent: UserAgent, username: string, password: string, path = '/admin/') {
  const start = await agent.follow(`${baseUrl}${path}`);
  const html = await start.response.text();
  if (!html.includes('name="password"')) return { response: start.response, url: start.url, html };
  const form = formOf(html, '/login');
  const posted = await agent.postForm(new URL(form.action, start.url), { csrf: form.csrf, username, password });
  if (posted.status !== 303) return { response: posted, url: start.url, html: await posted.text() };
  const done = await agent.follow(new URL(posted.headers.get('location') ?? '', start.url));
  return { response: done.response, url: done.url, html: await done.response.text() };
}

import { CookieJar } from 'tough-cookie';

/** A cookie-keeping HTTP user agent that does not follow redirects, so tests see each hop. */
export class UserAgent {
  readonly jar = new CookieJar();

  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const href = String(url);
    const headers = new Headers(init.headers);
    const cookie = await this.jar.getCookieString(href);
    if (cookie) headers.set('cookie', cookie);
    const response = await fetch(href, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) await this.jar.setCookie(line, href, { ignoreError: true });
    return response;
  }

  /** GET following redirects on our own origin, returning the final response and its URL. */
  async follow(url: string | URL, stopAt?: (location: URL) => boolean): Promise<{ response: Response; url: URL }> {
    let current = new URL(String(url));
    for (let hop = 0; hop < 20; hop++) {
      const response = await this.fetch(current);
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || !location) return { response, url: current };
      const next = new URL(location, current);
      if (stopAt?.(next)) return { response, url: next };
      current = next;
    }
    throw new Error('too many redirects');
  }

  /** POSTs a form (application/x-www-form-urlencoded). */
  async postForm(url: string | URL, fields: Record<string, string>): Promise<Response> {
    return this.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

/** Reads the hidden CSRF field and the form action out of a rendered page. */
export function formOf(html: string, actionContains: string): { action: string; csrf: string } {
  const forms = [...html.matchAll(/<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)];
  const form = forms.find((f) => f[1]?.includes(actionContains));
  if (!form) throw new Error(`no form with action containing ${actionContains} in page:\n${html.slice(0, 2000)}`);
  const csrf = /name="csrf" value="([^"]*)"/.exec(form[2] ?? '')?.[1] ?? '';
  return { action: decodeHtml(form[1] ?? ''), csrf };
}

/** One of the provider's own forms (op.deviceInputForm, op.deviceConfirmForm, op.logoutForm): action and hidden fields. */
export function providerForm(html: string, id: string): { action: string; fields: Record<string, string> } {
  const form = new RegExp(`<form id="${id.replace('.', '\\.')}"[^>]*action="([^"]+)"[^>]*>([\\s\\S]*?)</form>`).exec(html);
  if (!form) throw new Error(`no ${id} in page:\n${html.slice(0, 1500)}`);
  const fields: Record<string, string> = {};
  for (const input of (form[2] ?? '').matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) {
    fields[input[1]!] = input[2]!;
  }
  return { action: form[1]!, fields };
}

function decodeHtml(value: string): string {
  return value.replace(/&amp;/g, '&').replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

/**
 * What a browser does once a provider form hands it to our interaction pages (`location`, the
 * redirect it answered with): follows it, signs in as `username` on the login page (which must
 * come, unless `loginRequired` is false: a browser with a session skips it), allows on the
 * consent page, and follows to the end. The last answer.
 */
export async function signInAndAllow(agent: UserAgent, location: URL, username: string, password: string, { loginRequired = true } = {}): Promise<Response> {
  let { response, url } = await agent.follow(location);
  let html = await response.text();
  if (loginRequired || html.includes('/login"')) {
    const login = formOf(html, '/login');
    const posted = await agent.postForm(new URL(login.action, url), { csrf: login.csrf, username, password });
    ({ response, url } = await agent.follow(new URL(posted.headers.get('location')!, url)));
    html = await response.text();
  }
  const consent = formOf(html, '/confirm');
  const allowed = await agent.postForm(new URL(consent.action, url), { csrf: consent.csrf, decision: 'allow' });
  return (await agent.follow(new URL(allowed.headers.get('location')!, url))).response;
}

/** A response read once: status, headers, raw text and the JSON object it holds (or {}). */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

export async function readAnswer(response: Response): Promise<Answer> {
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    const parsed: unknown = text ? JSON.parse(text) : {};
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
  } catch {
    json = {};
  }
  return { status: response.status, headers: response.headers, text, json };
}

export interface ApiRequest {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string | undefined;
  json?: unknown;
  form?: Record<string, string>;
  /** A body sent as is, labelled JSON unless `contentType` says otherwise (malformed-body tests). */
  raw?: string;
  contentType?: string;
  /** A whole Authorization header, instead of `token`. */
  authorization?: string | undefined;
}

/**
 * One REST call as an API client makes it: JSON (or a form, or raw text) in, redirects not
 * followed, the answer read once. `path` is relative to `baseUrl` unless it is a full URL.
 */
export async function callApi(baseUrl: string, method: string, path: string, opts: ApiRequest = {}): Promise<Answer> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.token) headers['authorization'] = `Bearer ${opts.token}`;
  if (opts.authorization) headers['authorization'] = opts.authorization;
  let body: string | undefined;
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(opts.form).toString();
  } else if (opts.raw !== undefined) {
    headers['content-type'] = opts.contentType ?? 'application/json';
    body = opts.raw;
  }
  const url = /^https?:/.test(path) ? path : `${baseUrl}${path}`;
  return readAnswer(await fetch(url, { method, headers, body, redirect: 'manual' }));
}

import { expect } from 'vitest';
import http from 'node:http';
import { checkAgainstDocument } from './openapi-check.js';

/** A response read once: status, headers, raw text and the JSON object it holds (or {}). */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

export async function readAnswer(response: Response): Promise<Answer> {
  return answerOf(response.status, response.headers, await response.text());
}

function answerOf(status: number, headers: Headers, text: string): Answer {
  let json: Record<string, unknown> = {};
  try {
    const parsed: unknown = text ? JSON.parse(text) : {};
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
  } catch {
    json = {};
  }
  return { status, headers, text, json };
}

export interface RawRequest {
  method?: string;
  /** Sent exactly as given, `host` included (fetch would replace it). */
  headers?: Record<string, string>;
  body?: string;
}

/**
 * One request through node:http, which unlike fetch sends the Host header it is given and any
 * request target (`target` may be absolute-form, `http://host/path`): for tests of what a
 * client can claim about the URL it asked for. Redirects are not followed.
 */
export function rawRequest(origin: string, target: string, { method = 'GET', headers = {}, body }: RawRequest = {}): Promise<Answer> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const request = http.request({ host: hostname, port, method, path: target, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const received = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) received.append(name, one);
        }
        resolve(answerOf(response.statusCode ?? 0, received, Buffer.concat(chunks).toString('utf8')));
      });
    });
    request.on('error', reject);
    request.end(body);
  });
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
  /** Skip the check against the OpenAPI document (for answers a test wants to see whatever they are). */
  unchecked?: boolean;
}

/**
 * One REST call as an API client makes it: JSON (or a form, or raw text) in, redirects not
 * followed, the answer read once. `path` is relative to `baseUrl` unless it is a full URL.
 * An answer of a path the served OpenAPI document describes must be what the document says
 * for its status (test/helpers/openapi-check.ts), or the call throws.
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
  const answer = await readAnswer(await fetch(url, { method, headers, body, redirect: 'manual' }));
  if (!opts.unchecked) await checkAgainstDocument(method, url, answer);
  return answer;
}

/** A 401 from our REST API with the RFC 6750 challenge: `Bearer ...error="invalid_token"` and the same error in the body. */
export function expectInvalidTokenChallenge(answer: Answer): void {
  expect(answer.status, answer.text).toBe(401);
  expect(answer.headers.get('www-authenticate') ?? '').toMatch(/^Bearer /);
  expect(answer.headers.get('www-authenticate') ?? '').toContain('error="invalid_token"');
  expect(answer.json['error']).toBe('invalid_token');
}

import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ApiError } from '../../src/errors.js';
import { apiRouter, operation } from '../../src/web/api/operation.js';
import { PageQuery } from '../../src/web/api/schemas.js';

const Body = z.strictObject({
  name: z.string({ error: (issue) => (issue.input === undefined ? 'This field is required.' : 'Must be a string.') }),
  size: z.int({ error: 'Must be a whole number.' }).optional(),
});

describe('apiRouter: operations served from their declarations', () => {
  let server: Server;
  let url: string;
  const seen: string[] = [];
  beforeAll(async () => {
    const router = apiRouter(
      [
        operation({
          operationId: 'createThing',
          method: 'post',
          path: '/api/things/',
          summary: 's',
          tags: ['t'],
          group: 'public',
          body: Body,
          success: { status: 201, description: 'Created', schema: z.object({ name: z.string(), size: z.int() }) },
          handler: (_ctx, { body }) => ({ name: body.name, size: body.size ?? 1 }),
        }),
        operation({
          operationId: 'checkToken',
          method: 'post',
          path: '/api/things/check/',
          summary: 's',
          tags: ['t'],
          group: 'public',
          body: z.object({ token: z.string({ error: 'token is required.' }) }),
          invalid: 'message',
          success: { status: 200, description: 'OK', schema: z.object({}) },
          handler: () => ({}),
        }),
        operation({
          operationId: 'listThings',
          method: 'get',
          path: '/api/things/',
          summary: 's',
          tags: ['t'],
          group: 'public',
          query: PageQuery,
          success: { status: 200, description: 'OK', schema: z.object({ page: z.int(), page_size: z.int() }) },
          handler: (_ctx, { query }) => query,
        }),
        operation({
          operationId: 'replaceThing',
          method: 'patch',
          path: '/api/things/{id}/',
          summary: 's',
          tags: ['t'],
          group: 'public',
          params: z.object({ id: z.string() }),
          body: Body,
          before: async (_ctx, { params }) => {
            seen.push(`before ${params.id}`);
            if (params.id === 'missing') throw new ApiError(404, 'not_found', 'No such thing.');
          },
          success: { status: 204, description: 'Done' },
          handler: (_ctx, { params }) => {
            seen.push(`handler ${params.id}`);
          },
        }),
      ],
      {},
    );
    const app = new Koa();
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        ctx.status = error.status;
        ctx.body = error.toJSON();
      }
    });
    app.use(router.routes()).use(router.allowedMethods());
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const send = async (method: string, path: string, body?: string, contentType = 'application/json') => {
    const response = await fetch(`${url}${path}`, { method, headers: { 'content-type': contentType }, ...(body === undefined ? {} : { body }) });
    const text = await response.text();
    return { status: response.status, text, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  };

  it('answers with the success status and the handler’s body, with and without the trailing slash', async () => {
    expect(await send('POST', '/api/things/', '{"name":"a","size":2}')).toMatchObject({ status: 201, json: { name: 'a', size: 2 } });
    expect(await send('POST', '/api/things', 'name=b', 'application/x-www-form-urlencoded')).toMatchObject({ status: 201, json: { name: 'b', size: 1 } });
  });

  it('refuses a body off its schema with one message list per field, unknown fields by name', async () => {
    const answer = await send('POST', '/api/things/', '{"size":1.5,"colour":"red"}');
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({
      error: 'invalid_request',
      error_description: expect.stringMatching(/^Invalid /),
      fields: { name: ['This field is required.'], size: ['Must be a whole number.'], colour: ['This field is read-only or unknown.'] },
      // DRF's shape beside ours: each field's list at the top level.
      name: ['This field is required.'],
      size: ['Must be a whole number.'],
      colour: ['This field is read-only or unknown.'],
    });
    expect((await send('POST', '/api/things/', '{"name":7}')).json?.['fields']).toEqual({ name: ['Must be a string.'] });
  });

  it('answers `invalid: message` routes and bad queries with the first problem as the description', async () => {
    expect((await send('POST', '/api/things/check/', '{}')).json).toEqual({ error: 'invalid_request', error_description: 'token is required.', detail: 'token is required.' });
    expect((await send('GET', '/api/things/?page=0')).json).toEqual({ error: 'invalid_request', error_description: 'page must be a positive whole number.', detail: 'page must be a positive whole number.' });
    expect((await send('GET', '/api/things/?page=2&page_size=500')).json).toEqual({ page: 2, page_size: 100 });
    expect((await send('GET', '/api/things/?page=')).json).toEqual({ page: 1, page_size: 20 });
  });

  it('runs `before` ahead of the body check: a missing target answers 404 whatever the body', async () => {
    expect(await send('PATCH', '/api/things/missing/', '{"bad":1}')).toMatchObject({ status: 404 });
    expect(await send('PATCH', '/api/things/x/', '{"bad":1}')).toMatchObject({ status: 400 });
    expect(await send('PATCH', '/api/things/y/', '{"name":"n"}')).toEqual({ status: 204, text: '', json: undefined });
    expect(seen).toEqual(['before missing', 'before x', 'before y', 'handler y']);
  });

  it('refuses to build a user or staff route without a guard', () => {
    const unguarded = operation({ operationId: 'x', method: 'get', path: '/x/', summary: 's', tags: ['t'], group: 'staff', success: { status: 204, description: 'd' }, handler: () => undefined });
    expect(() => apiRouter([unguarded], {})).toThrow(/needs a guard rule/);
  });
});

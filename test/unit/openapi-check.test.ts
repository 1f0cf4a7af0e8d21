import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../helpers/http.js';
import { ResponseChecker, type OpenApiDocument } from '../helpers/openapi-check.js';

/** A document of one operation: GET /api/things/{id}/ answers a Thing, or a 404 Error. */
const DOCUMENT: OpenApiDocument = {
  paths: {
    '/api/things/{id}/': {
      get: {
        responses: {
          200: { content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } },
          404: { content: { 'application/json': { schema: { type: 'object', required: ['error'], properties: { error: { type: 'string' } } } } } },
        },
      },
      delete: { responses: { 204: {} } },
    },
    '/api/things/mine/': { get: { responses: { 200: { content: { 'application/json': { schema: { type: 'array' } } } } } } },
  },
  components: {
    schemas: {
      Thing: {
        type: 'object',
        properties: { id: { type: 'integer' }, at: { type: 'string', format: 'date-time' } },
        required: ['id', 'at'],
        additionalProperties: false,
      },
    },
  },
} as OpenApiDocument;

const json = (status: number, body: unknown) => ({ status, headers: new Headers({ 'content-type': 'application/json; charset=utf-8' }), text: JSON.stringify(body) });

describe('the OpenAPI response checker', () => {
  const checker = new ResponseChecker(DOCUMENT);

  it('accepts answers the document describes, with or without the trailing slash', () => {
    expect(() => checker.check('GET', '/api/things/7/', json(200, { id: 7, at: '2026-01-01T00:00:00.000Z' }))).not.toThrow();
    expect(() => checker.check('GET', '/api/things/7', json(404, { error: 'not_found' }))).not.toThrow();
    expect(() => checker.check('DELETE', '/api/things/7/', { status: 204, headers: new Headers(), text: '' })).not.toThrow();
  });

  it('rejects a body that does not match, naming the property', () => {
    expect(() => checker.check('GET', '/api/things/7/', json(200, { id: '7', at: '2026-01-01T00:00:00.000Z' }))).toThrow(/does not match[\s\S]*\/id must be integer/);
    expect(() => checker.check('GET', '/api/things/7/', json(200, { id: 7 }))).toThrow(/must have required property 'at'/);
    expect(() => checker.check('GET', '/api/things/7/', json(200, { id: 7, at: 'yesterday' }))).toThrow(/\/at must match format "date-time"/);
    expect(() => checker.check('GET', '/api/things/7/', json(200, { id: 7, at: '2026-01-01T00:00:00.000Z', secret: 'x' }))).toThrow(/must NOT have additional properties/);
  });

  it('rejects a status the operation does not list, and a body where the document has none', () => {
    expect(() => checker.check('GET', '/api/things/7/', json(500, { error: 'server_error' }))).toThrow(/answered 500, which the OpenAPI document does not list \(it lists 200, 404\)/);
    expect(() => checker.check('DELETE', '/api/things/7/', json(204, {}))).toThrow(/with a body, which the document says has none/);
    expect(() => checker.check('GET', '/api/things/7/', { status: 200, headers: new Headers({ 'content-type': 'text/html' }), text: '<p>hi</p>' })).toThrow(/not the application\/json/);
  });

  it('prefers a literal path over a template, and leaves undocumented paths and methods alone', () => {
    expect(checker.templateOf('/api/things/mine/')).toBe('/api/things/mine/');
    expect(() => checker.check('GET', '/api/things/mine/', json(200, []))).not.toThrow();
    expect(() => checker.check('GET', '/api/other/', json(418, 'anything'))).not.toThrow();
    expect(() => checker.check('PATCH', '/api/things/7/', json(418, 'anything'))).not.toThrow();
  });

  describe('through callApi', () => {
    let server: http.Server;
    let origin: string;
    beforeAll(async () => {
      server = http.createServer((request, response) => {
        const send = (status: number, body: unknown) => response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        if (request.url === '/api/openapi.json') return send(200, DOCUMENT);
        if (request.url === '/api/things/1/') return send(200, { id: 1, at: '2026-01-01T00:00:00.000Z' });
        if (request.url === '/api/things/2/') return send(200, { id: 2 });
        return send(418, { error: 'teapot' });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('passes a matching answer through and fails the call on a wrong body or an undocumented status', async () => {
      expect((await callApi(origin, 'GET', '/api/things/1/')).json).toEqual({ id: 1, at: '2026-01-01T00:00:00.000Z' });
      await expect(callApi(origin, 'GET', '/api/things/2/')).rejects.toThrow(/must have required property 'at'/);
      await expect(callApi(origin, 'GET', '/api/things/3/')).rejects.toThrow(/answered 418/);
      expect((await callApi(origin, 'GET', '/api/things/3/', { unchecked: true })).status).toBe(418);
    });
  });
});

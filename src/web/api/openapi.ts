import { z } from 'zod';
import { DPOP_SIGNING_ALGORITHMS } from '../../oidc/provider.js';
import { API_SCOPE_DESCRIPTIONS } from '../../core/resources/built-in.js';
import { DPOP_PROOF_WINDOW_SECONDS } from './dpop-proof.js';
import type { RouteRule } from './route-guard.js';
import { apiRouter, operation, routerPathOf, type ApiRouter, type Operation } from './operation.js';
import { ErrorBody } from './schemas.js';

export { routerPathOf };

/** A REST route as the routers serve it, with the guard's rule when it has one. */
export interface ApiRoute {
  method: string;
  path: string;
  rule?: RouteRule;
}

/** The OpenAPI security requirement a guard's rule amounts to (alternatives: any one will do). */
export function securityOf(rule: RouteRule | undefined): Array<Record<string, string[]>> | undefined {
  if (!rule) return undefined;
  return [...(rule.optional ? [{}] : []), { oauth2: [rule.scope] }, { firstParty: [] }, ...(rule.userinfo ? [{ userinfo: [] }] : [])];
}

/** What the error answers every route of a kind may give mean. */
const COMMON_ERRORS = {
  400: 'Invalid input; `fields` names each bad field.',
  401: 'Missing, invalid or expired token, or a missing or bad DPoP proof (with a `WWW-Authenticate: Bearer` or `DPoP` challenge).',
  403: 'The token lacks the scope this route needs (`insufficient_scope`), or does not act for a person.',
  413: 'The request body is too large.',
};

type JsonSchema = Record<string, unknown>;
const COMPONENTS = '#/components/schemas/';

/** JSON Schema 2020-12 of each schema under its id, `$ref`s to named ones pointing at the components. */
function toJsonSchemas(ids: ReadonlyMap<z.ZodType, string>, io: 'input' | 'output'): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [schema, id] of ids) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io,
    uri: (id) => `${COMPONENTS}${id}`,
    override: ({ jsonSchema }) => {
      // Bounds zod adds to every integer (the safe-integer range) say nothing to a client.
      if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
      if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
    },
  });
  for (const schema of Object.values(schemas)) {
    delete schema.$schema;
    delete schema.$id;
  }
  return schemas as Record<string, JsonSchema>;
}

/** The component name a schema was given with `.meta({ id })`. */
const nameOf = (schema: z.ZodType): string | undefined => {
  const id = z.globalRegistry.get(schema)?.id;
  return typeof id === 'string' ? id : undefined;
};

/**
 * Every named schema that `schemas` use, found by walking their definitions (`_zod.def`, zod 4's
 * interface for tools): each becomes a component, so `$ref`s to it resolve in the document
 * (without this, zod points them at a `__shared` $defs entry the document would not have).
 */
function namedIn(schemas: Iterable<z.ZodType>): Map<z.ZodType, string> {
  const found = new Map<z.ZodType, string>();
  const seen = new Set<unknown>();
  const visit = (value: unknown): void => {
    if (!value || typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    if (value instanceof z.ZodType) {
      const name = nameOf(value);
      if (name) found.set(value, name);
      visit((value as unknown as { _zod: { def: unknown } })._zod.def);
      return;
    }
    for (const inner of Array.isArray(value) ? value : Object.values(value)) visit(inner);
  };
  for (const schema of schemas) visit(schema);
  return found;
}

/** Ids for the schemas of one direction: their names, or `op.<operationId>.<part>` for the unnamed. */
class SchemaSet {
  readonly ids = new Map<z.ZodType, string>();
  add(schema: z.ZodType, fallbackId: string): void {
    if (!this.ids.has(schema)) this.ids.set(schema, nameOf(schema) ?? fallbackId);
  }
  generate(io: 'input' | 'output'): Record<string, JsonSchema> {
    for (const [schema, name] of namedIn([...this.ids.keys()])) if (!this.ids.has(schema)) this.ids.set(schema, name);
    return toJsonSchemas(this.ids, io);
  }
}

const content = (schema: JsonSchema, form = false) => ({
  'application/json': { schema },
  ...(form ? { 'application/x-www-form-urlencoded': { schema } } : {}),
});

/** The statuses an operation answers with besides success, and what each means. */
function errorsOf(op: Operation): Record<number, string> {
  const errors: Record<number, string> = {};
  // Path parameters are plain strings: a bad id is the handler's 404, never a 400.
  if (op.body || op.query) errors[400] = COMMON_ERRORS[400];
  // Optional guards too: a token that is sent must be valid.
  if (op.rule) errors[401] = COMMON_ERRORS[401];
  if (op.rule) errors[403] = COMMON_ERRORS[403];
  if (op.body) errors[413] = COMMON_ERRORS[413];
  for (const [status, description] of Object.entries(op.errors ?? {})) {
    const code = Number(status);
    errors[code] = errors[code] && code === 403 ? `${errors[code]} ${description}` : String(description);
  }
  return errors;
}

/**
 * OpenAPI 3.1 description of Latchkey's REST API, generated from the operations the routers
 * serve (the OAuth/OIDC endpoints under /o are described by discovery instead). Each
 * operation's `security` comes from its guard's rule, so the document cannot name another
 * scope than the one the server checks.
 */
export function openApiDocument(publicUrl: string, operations: readonly Operation[]) {
  // Request schemas as clients send them (io: input); responses as the server writes them.
  const requests = new SchemaSet();
  const responses = new SchemaSet();
  responses.add(ErrorBody, 'Error');
  for (const op of operations) {
    for (const part of ['params', 'query', 'body'] as const) if (op[part]) requests.add(op[part] as z.ZodType, `op.${op.operationId}.${part}`);
    if (op.success.status !== 204) responses.add(op.success.schema as z.ZodType, `op.${op.operationId}.success`);
  }
  // A named schema used both ways is shown as the server writes it.
  const generated = { ...requests.generate('input'), ...responses.generate('output') };
  /** A named schema by reference, any other one inline. */
  const schemaOf = (set: SchemaSet, schema: z.ZodType): JsonSchema => {
    const id = set.ids.get(schema);
    if (!id) return {};
    return id.startsWith('op.') ? (generated[id] ?? {}) : { $ref: `${COMPONENTS}${id}` };
  };
  /** Parameters are listed one by one: the object's own properties, even when it is named. */
  const inline = (set: SchemaSet, schema: z.ZodType): JsonSchema => generated[set.ids.get(schema) ?? ''] ?? {};
  const components = Object.fromEntries(Object.entries(generated).filter(([id]) => !id.startsWith('op.')).sort(([a], [b]) => a.localeCompare(b)));
  const errorContent = content({ $ref: `${COMPONENTS}Error` });

  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const parameters = (['params', 'query'] as const).flatMap((part) => {
      const schema = op[part] ? inline(requests, op[part] as z.ZodType) : undefined;
      const properties = (schema?.['properties'] ?? {}) as Record<string, JsonSchema>;
      const required = new Set((schema?.['required'] ?? []) as string[]);
      return Object.entries(properties).map(([name, { description, ...property }]) => ({
        name,
        in: part === 'params' ? 'path' : 'query',
        ...(part === 'params' || required.has(name) ? { required: true } : {}),
        ...(description ? { description } : {}),
        schema: property,
      }));
    });
    const security = securityOf(op.rule);
    const answers: Record<string, unknown> = {
      [op.success.status]: { description: op.success.description, ...(op.success.status !== 204 ? { content: content(schemaOf(responses, op.success.schema as z.ZodType)) } : {}) },
    };
    for (const [status, description] of Object.entries(errorsOf(op))) answers[status] = { description, content: errorContent };
    (paths[op.path] ??= {})[op.method] = {
      operationId: op.operationId,
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      tags: [...op.tags],
      ...(parameters.length ? { parameters } : {}),
      ...(op.body ? { requestBody: { required: true, content: content(schemaOf(requests, op.body as z.ZodType), op.form) } } : {}),
      responses: answers,
      ...(security ? { security } : {}),
      // Who may call it besides what the token carries: anyone, a person, or staff.
      'x-latchkey-group': op.group,
    };
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Latchkey REST API',
      version: '1',
      description:
        "User management, the caller's profile and account, OAuth clients, API resources, the audit log and JWT endpoints. " +
        'Paths work with and without the trailing slash. Errors are `{"error", "error_description", "detail"}` (DRF\'s `detail`; for validation errors `fields`, and each field\'s message list at the top level as DRF answers, instead of `detail`). ' +
        'Each operation\'s `x-latchkey-group` says who may call it with a token that qualifies: `public` (anyone), `user` (a token acting for a person; ' +
        'client-only tokens get 403) or `staff` (a staff member; others get 403 `permission_denied`). ' +
        `OpenID Connect discovery: ${publicUrl}/o/.well-known/openid-configuration`,
    },
    servers: [{ url: publicUrl }],
    tags: [...new Set(operations.flatMap((op) => op.tags))].map((name) => ({ name })),
    components: {
      securitySchemes: {
        oauth2: {
          type: 'oauth2',
          description:
            `An access token from /o/token issued for the resource ${publicUrl}/api (RFC 8707 \`resource\` parameter): an RFC 9068 JWT ` +
            'carrying the scopes below, of those the client is registered for (`api_scopes`) and the person allowed. DPoP-bound ' +
            'ones go as `Authorization: DPoP <token>` with a fresh `DPoP` proof (RFC 9449: typ dpop+jwt, alg ' +
            `${DPOP_SIGNING_ALGORITHMS.join('/')}, htm, htu = this URL without query, iat within ${DPOP_PROOF_WINDOW_SECONDS} s, single-use jti, ath). ` +
            'A token without the scope a route needs gets 403 `insufficient_scope`.',
          flows: {
            authorizationCode: { authorizationUrl: `${publicUrl}/o/auth`, tokenUrl: `${publicUrl}/o/token`, refreshUrl: `${publicUrl}/o/token`, scopes: API_SCOPE_DESCRIPTIONS },
            clientCredentials: { tokenUrl: `${publicUrl}/o/token`, scopes: API_SCOPE_DESCRIPTIONS },
          },
        },
        firstParty: {
          type: 'http',
          scheme: 'bearer',
          description: "Latchkey's own credentials: an access JWT from /api/token/, or an access token from /users/login/. They act with everything the user may do.",
        },
        userinfo: {
          type: 'http',
          scheme: 'bearer',
          description: 'An access token an app got from /o/token without a resource (the one for /o/me). Only GET /auth/me/ takes it, showing what its OpenID scopes allow.',
        },
      },
      schemas: components,
    },
    paths,
  };
}

export type OpenApiDocument = ReturnType<typeof openApiDocument>;

/** GET /api/openapi.json: the document of `routers` (this one included), made on first request. */
export function createOpenApiRouter({ publicUrl, routers }: { publicUrl: string; routers: () => readonly ApiRouter[] }): ApiRouter {
  let document: OpenApiDocument | undefined;
  return apiRouter([
    operation({
      operationId: 'getOpenApiDocument',
      method: 'get',
      path: '/api/openapi.json',
      summary: 'This document',
      tags: ['meta'],
      group: 'public',
      success: { status: 200, description: 'OpenAPI 3.1', schema: z.record(z.string(), z.unknown()) },
      handler: () => (document ??= openApiDocument(publicUrl, routers().flatMap((router) => router.operations))),
    }),
  ], {});
}

import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { z } from 'zod';
import { ApiError, requestFields } from '../../errors.js';
import type { BearerResolver } from './bearer-auth.js';
import { guard, requireUser, type RouteRule } from './route-guard.js';
import { bodyOf, parseBody, parseDeleteBody } from './body.js';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/**
 * Who may call a route, checked once for the whole group rather than in each handler:
 * `public` (no token, or an optional one), `user` (a token acting for a person) and `staff`
 * (a person with is_staff). The guard's {@link RouteRule} decides which tokens reach it.
 */
export type RouteGroup = 'public' | 'user' | 'staff';

/** Error statuses an operation may answer with besides those its guard and body add. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 429;

/** The answer a handler gives on success; 204 has no body. */
export type Success<R extends z.ZodType> = { status: 200 | 201; description: string; schema: R } | { status: 204; description: string };

/** The validated request: path parameters, query and body, typed by their schemas. */
export interface OperationInput<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  params: z.output<P>;
  query: z.output<Q>;
  body: z.output<B>;
}

/**
 * One REST operation, declared once: what the OpenAPI document says about it and what the
 * router does for it come from here, so they cannot drift apart.
 */
export interface OperationSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, R extends z.ZodType> {
  operationId: string;
  method: HttpMethod;
  /** As the document spells it, with the trailing slash: `/api/users/{id}/` (served with or without it). */
  path: string;
  summary: string;
  description?: string;
  tags: readonly string[];
  group: RouteGroup;
  /** The guard's rule: which tokens reach this route (none: no guard at all). */
  rule?: RouteRule;
  params?: P;
  query?: Q;
  body?: B;
  /** The document also offers form-urlencoded for the body (the parser always takes both). */
  form?: boolean;
  /**
   * How a body that fails its schema is answered: `fields`, one message list per field as
   * Django REST framework does (default), or `message`, the first problem as the description.
   */
  invalid?: 'fields' | 'message';
  success: Success<R>;
  /** The other answers, with what they mean; 401/403 of the guard and 400/413 of the body are added. */
  errors?: Partial<Record<ErrorStatus, string>>;
  /** Runs before the body is validated: a missing or untouchable target answers before complaints about the body. */
  before?: (ctx: Context, input: Omit<OperationInput<P, Q, B>, 'body'>) => Promise<unknown>;
  /** Sets headers on `ctx` if it must; returns the success body (nothing for 204). */
  handler: (ctx: Context, input: OperationInput<P, Q, B>) => Promise<z.input<R>> | z.input<R>;
}

/** An operation with its types erased, as routers and the document hold them. */
export type Operation = OperationSpec<any, any, any, any>;

/** Declares an operation; only here for the type inference of `handler` from the schemas. */
export function operation<P extends z.ZodType = z.ZodUndefined, Q extends z.ZodType = z.ZodUndefined, B extends z.ZodType = z.ZodUndefined, R extends z.ZodType = z.ZodVoid>(
  spec: OperationSpec<P, Q, B, R>,
): Operation {
  return spec as Operation;
}

/** `/api/users/{id}/` in the document is `/api/users/:id` in the router (slash optional). */
export const routerPathOf = (path: string) => path.replace(/\{(\w+)\}/g, ':$1').replace(/(.)\/$/, '$1');

/** A refused body as DRF answers: the message lists per field, unknown fields by name. */
export const UNKNOWN_FIELD = 'This field is read-only or unknown.';

function fieldsOf(issues: z.ZodError['issues']): Record<string, string[]> {
  const fields: Record<string, string[]> = {};
  const add = (key: string, message: string) => {
    const list = (fields[key] ??= []);
    if (!list.includes(message)) list.push(message);
  };
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys' && issue.path.length === 0) for (const key of issue.keys) add(key, UNKNOWN_FIELD);
    else add(String(issue.path[0] ?? 'non_field_errors'), issue.message);
  }
  return fields;
}

/** `value` read through `schema`, or the 400 the edge answers for it. */
function validated<S extends z.ZodType>(schema: S | undefined, value: unknown, invalid: 'fields' | 'message'): z.output<S> | undefined {
  if (!schema) return undefined;
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  if (invalid === 'fields') throw requestFields(fieldsOf(result.error.issues));
  throw new ApiError(400, 'invalid_request', result.error.issues[0]?.message ?? 'Invalid request.');
}

export interface ApiRouterOptions {
  /** Resolves the tokens of guarded operations. */
  resolveBearer?: BearerResolver;
  /** What staff-only routes of this router tell everyone else. */
  staffRefusal?: string;
}

/** The group's check, after the guard: a person for `user`, a staff member for `staff`. */
function groupCheck(group: RouteGroup, staffRefusal: string): Middleware | undefined {
  if (group === 'public') return undefined;
  return async (ctx: Context, next: Next) => {
    const user = requireUser(ctx);
    if (group === 'staff' && !user.isStaff) throw new ApiError(403, 'permission_denied', staffRefusal);
    await next();
  };
}

/** A router with the operations it serves, for the OpenAPI document. */
export type ApiRouter = Router & { readonly operations: readonly Operation[] };

/**
 * Serves `operations`: guard, group check, body parsing, schema validation (400s in the API's
 * error shape), then the handler, whose result becomes the answer.
 */
export function apiRouter(operations: readonly Operation[], { resolveBearer, staffRefusal = 'Only staff may do this.' }: ApiRouterOptions): ApiRouter {
  const router = new Router();
  for (const op of operations) {
    if (op.group !== 'public' && !op.rule) throw new Error(`${op.operationId}: a ${op.group} route needs a guard rule`);
    const chain: Middleware[] = [];
    if (op.rule) {
      if (!resolveBearer) throw new Error(`${op.operationId}: a guarded route needs resolveBearer`);
      chain.push(guard(resolveBearer, op.rule));
    }
    const check = groupCheck(op.group, staffRefusal);
    if (check) chain.push(check);
    if (op.body) chain.push(op.method === 'delete' ? parseDeleteBody : parseBody);
    chain.push(async (ctx: Context) => {
      const params = validated(op.params, ctx.params, 'message');
      const query = validated(op.query, ctx.query, 'message');
      if (op.before) await op.before(ctx, { params, query });
      const body = validated(op.body, op.body ? bodyOf(ctx) : undefined, op.invalid ?? 'fields');
      const result: unknown = await op.handler(ctx, { params, query, body });
      ctx.status = op.success.status;
      if (op.success.status !== 204) ctx.body = result;
    });
    router[op.method](routerPathOf(op.path), ...chain);
  }
  return Object.assign(router, { operations });
}

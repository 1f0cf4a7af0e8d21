import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

/**
 * Checks real REST answers against the OpenAPI document the server serves: the status must be
 * one the operation lists, and a JSON body must match that status's schema. callApi runs every
 * answer of a documented (method, path) through this, so the suites that use it keep the
 * document honest.
 */

type Json = Record<string, unknown>;
export interface OpenApiDocument {
  components?: unknown;
  paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> }>>;
  [key: string]: unknown;
}

/** What a check needs of an answer. */
export interface CheckedAnswer {
  status: number;
  headers: Headers;
  text: string;
}

const METHODS = new Set(['get', 'put', 'post', 'patch', 'delete']);
// ajv-formats is CommonJS with its function as the default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/** `/api/users/{id}/` as a pattern for request paths (served with and without the trailing slash). */
function templatePattern(template: string): RegExp {
  const escaped = template
    .replace(/\/$/, '')
    .split(/(\{\w+\})/)
    .map((part) => (/^\{\w+\}$/.test(part) ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${escaped}/?$`);
}

/** One served document, with its compiled validators. */
export class ResponseChecker {
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly templates: Array<{ template: string; pattern: RegExp }>;

  constructor(private readonly document: OpenApiDocument) {
    // Not strict: the document carries OpenAPI's own keywords around the schemas.
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
    addFormats(this.ajv);
    this.ajv.addSchema(document as unknown as Json, 'openapi.json');
    // Literal paths before templated ones: /api/token/refresh/ is no {id}.
    this.templates = Object.keys(document.paths)
      .map((template) => ({ template, pattern: templatePattern(template) }))
      .sort((a, b) => Number(a.template.includes('{')) - Number(b.template.includes('{')));
  }

  /** The document's path template that serves `pathname`, if any. */
  templateOf(pathname: string): string | undefined {
    return this.templates.find(({ pattern }) => pattern.test(pathname))?.template;
  }

  /**
   * Throws a readable error when `answer` to `method pathname` is not what the document says;
   * paths (and methods) the document does not describe are not checked.
   */
  check(method: string, pathname: string, answer: CheckedAnswer): void {
    const template = this.templateOf(pathname);
    const verb = method.toLowerCase();
    if (!template || !METHODS.has(verb)) return;
    const operation = this.document.paths[template]?.[verb];
    if (!operation) return;
    const where = `${method.toUpperCase()} ${pathname} (${template})`;
    const responses = operation.responses ?? {};
    const response = responses[String(answer.status)];
    if (!response) {
      throw new Error(`${where} answered ${answer.status}, which the OpenAPI document does not list (it lists ${Object.keys(responses).join(', ')}): ${answer.text.slice(0, 300)}`);
    }
    const contentType = answer.headers.get('content-type') ?? '';
    if (!response.content) {
      if (answer.text !== '') throw new Error(`${where} answered ${answer.status} with a body, which the document says has none: ${answer.text.slice(0, 300)}`);
      return;
    }
    if (!response.content['application/json']) return;
    if (!/^application\/json\b/.test(contentType)) {
      throw new Error(`${where} answered ${answer.status} as "${contentType}", not the application/json the document describes: ${answer.text.slice(0, 300)}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch {
      throw new Error(`${where} answered ${answer.status} with a body that is not JSON: ${answer.text.slice(0, 300)}`);
    }
    const validate = this.validatorFor(template, verb, answer.status);
    if (!validate(body)) {
      const problems = (validate.errors ?? []).map((e) => `  ${e.instancePath || '(body)'} ${e.message ?? ''}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
      throw new Error(`${where} answered ${answer.status} with a body that does not match the OpenAPI document:\n${problems.join('\n')}\nbody: ${answer.text.slice(0, 800)}`);
    }
  }

  private validatorFor(template: string, verb: string, status: number): ValidateFunction {
    const pointer = ['paths', template, verb, 'responses', String(status), 'content', 'application/json', 'schema']
      .map((part) => encodeURIComponent(part.replace(/~/g, '~0').replace(/\//g, '~1')))
      .join('/');
    const key = `${verb} ${template} ${status}`;
    let validate = this.validators.get(key);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `openapi.json#/${pointer}` });
      this.validators.set(key, validate);
    }
    return validate;
  }
}

const checkers = new Map<string, ResponseChecker>();

/**
 * The checker of the server at `origin`, from its /api/openapi.json (fetched once per origin);
 * null when that origin serves no document (not a Latchkey, or not now).
 */
export async function responseCheckerFor(origin: string): Promise<ResponseChecker | null> {
  const known = checkers.get(origin);
  if (known) return known;
  const response = await fetch(`${origin}/api/openapi.json`, { headers: { accept: 'application/json' } });
  if (response.status !== 200) return null;
  const checker = new ResponseChecker((await response.json()) as OpenApiDocument);
  checkers.set(origin, checker);
  return checker;
}

/** Checks `answer` to `method url` against the document of the server that gave it (see ResponseChecker.check). */
export async function checkAgainstDocument(method: string, url: string, answer: CheckedAnswer): Promise<void> {
  const { origin, pathname } = new URL(url);
  const checker = await responseCheckerFor(origin);
  checker?.check(method, pathname, answer);
}

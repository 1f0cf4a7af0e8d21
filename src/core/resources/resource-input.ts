import { OIDC_SCOPES } from '../accounts/claims.js';
import { RESOURCE_TTL } from '../tokens/lifetimes.js';
import { ACCESS_TOKEN_FORMATS, type AccessTokenFormat, type NewResource } from '../../storage/resources.js';
import { fieldCollector, fieldProblem, type FieldProblem } from '../errors.js';

/** The writable fields of a resource, as the REST API, the admin pages and the CLI name them. */
export const RESOURCE_FIELDS = ['identifier', 'name', 'scopes', 'access_token_ttl', 'access_token_format'] as const;
export type ResourceField = (typeof RESOURCE_FIELDS)[number];

/** What a caller asks for, already of the right JavaScript types but not yet checked. */
export interface ResourceInput {
  identifier?: string;
  name?: string;
  scopes?: string[];
  accessTokenTtl?: number;
  accessTokenFormat?: string;
}

export const MAX_IDENTIFIER_LENGTH = 512;
const MAX_NAME_LENGTH = 255;
const MAX_SCOPES = 100;
const MAX_SCOPE_LENGTH = 128;

/** RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) (no space, `"` or `\`). */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * RFC 8707 2: an absolute URI, without a fragment. Only http(s) (what resource servers
 * are), no user credentials, no white space (it is compared byte for byte with `resource`).
 */
export function identifierProblem(identifier: string): FieldProblem | undefined {
  if (!identifier) return fieldProblem('required');
  if (identifier.length > MAX_IDENTIFIER_LENGTH) return fieldProblem('too_long', { max: MAX_IDENTIFIER_LENGTH });
  if (/[\s\x00-\x1f\x7f]/.test(identifier)) return fieldProblem('uri_control_characters');
  if (!URL.canParse(identifier)) return fieldProblem('uri_not_absolute');
  const url = new URL(identifier);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return fieldProblem('uri_not_http');
  if (identifier.includes('#')) return fieldProblem('uri_fragment');
  if (url.username || url.password) return fieldProblem('uri_credentials');
  return undefined;
}

/** Problems with a list of scopes, one each. */
export function scopeProblems(scopes: readonly string[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (scopes.length > MAX_SCOPES) problems.push(fieldProblem('too_many_scopes', { max: MAX_SCOPES }));
  const seen = new Set<string>();
  for (const scope of scopes) {
    if (!SCOPE_TOKEN.test(scope) || scope.length > MAX_SCOPE_LENGTH) {
      problems.push(fieldProblem('scope_invalid', { scope: scope.slice(0, MAX_SCOPE_LENGTH), max: MAX_SCOPE_LENGTH }));
    } else if (OIDC_SCOPES.includes(scope)) {
      problems.push(fieldProblem('scope_oidc', { scope }));
    } else if (seen.has(scope)) {
      problems.push(fieldProblem('scope_duplicate', { scope }));
    }
    seen.add(scope);
  }
  return problems;
}

/**
 * Checks a complete description of a resource (defaults applied) and returns what is stored;
 * one problem list per bad field, under the names in {@link RESOURCE_FIELDS}.
 */
export function checkResource(input: ResourceInput): NewResource {
  const problems = fieldCollector();
  const problem = (key: ResourceField, found: FieldProblem) => problems.add(key, found);

  const identifier = (input.identifier ?? '').trim();
  const identifierIssue = identifierProblem(identifier);
  if (identifierIssue) problem('identifier', identifierIssue);

  // A name left empty is the identifier (which has its own limit, and the column room for it).
  const given = (input.name ?? '').trim();
  if (given.length > MAX_NAME_LENGTH) problem('name', fieldProblem('too_long', { max: MAX_NAME_LENGTH }));
  else if (/\p{Cc}/u.test(given)) problem('name', fieldProblem('control_characters'));
  const name = given || identifier;

  const scopes = input.scopes ?? [];
  for (const message of scopeProblems(scopes)) problem('scopes', message);

  const ttl = input.accessTokenTtl ?? RESOURCE_TTL.default;
  if (!Number.isSafeInteger(ttl) || ttl < RESOURCE_TTL.min || ttl > RESOURCE_TTL.max) {
    problem('access_token_ttl', fieldProblem('ttl_out_of_range', { min: RESOURCE_TTL.min, max: RESOURCE_TTL.max }));
  }

  const format = input.accessTokenFormat ?? 'jwt';
  if (!(ACCESS_TOKEN_FORMATS as readonly string[]).includes(format)) problem('access_token_format', fieldProblem('token_format'));

  problems.throwIfAny();
  return { identifier, name, scopes, accessTokenTtl: ttl, accessTokenFormat: format as AccessTokenFormat };
}

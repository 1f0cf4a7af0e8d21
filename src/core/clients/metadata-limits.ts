/**
 * Bounds on what a client's metadata may hold, wherever it comes from (dynamic registration,
 * the REST API, the admin pages): every value is stored, shown on consent and admin pages and
 * sent back, so a 50 kB name or a control character in a URI is refused, not stored (or, on
 * PostgreSQL, a 500 from the column's limit). Returns what is wrong, in English, or null.
 */

/** The clients table's `name` column holds 255 characters. */
export const MAX_CLIENT_NAME_LENGTH = 255;
/** A URI or any other single value (the usual practical limit for URLs). */
const MAX_VALUE_LENGTH = 2048;
/** Values inside `jwks`: an RSA modulus of 8192 bits is about 1,400 characters. */
const MAX_KEY_VALUE_LENGTH = 8192;
const MAX_LIST_LENGTH = 100;
/** The whole metadata as JSON. */
const MAX_METADATA_LENGTH = 60_000;

const CONTROL = /\p{Cc}/u;

export function clientNameProblem(name: string): string | null {
  if (name.length > MAX_CLIENT_NAME_LENGTH) return `client_name must be at most ${MAX_CLIENT_NAME_LENGTH} characters.`;
  if (CONTROL.test(name)) return 'client_name must not contain control characters.';
  return null;
}

function valueProblem(path: string, value: unknown, maxLength: number): string | null {
  if (typeof value === 'string') {
    if (value.length > maxLength) return `${path} must be at most ${maxLength} characters.`;
    if (CONTROL.test(value)) return `${path} must not contain control characters.`;
    return null;
  }
  if (Array.isArray(value)) {
    if (value.length > MAX_LIST_LENGTH) return `${path} may list at most ${MAX_LIST_LENGTH} values.`;
    for (const item of value) {
      const problem = valueProblem(path, item, maxLength);
      if (problem) return problem;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      const problem = valueProblem(`${path}.${key}`, inner, maxLength);
      if (problem) return problem;
    }
  }
  return null;
}

export function clientMetadataProblem(metadata: Readonly<Record<string, unknown>>): string | null {
  if (typeof metadata['client_name'] === 'string') {
    const problem = clientNameProblem(metadata['client_name']);
    if (problem) return problem;
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (CONTROL.test(key) || key.length > 128) return 'Metadata names must be short and free of control characters.';
    const problem = valueProblem(key, value, key === 'jwks' ? MAX_KEY_VALUE_LENGTH : MAX_VALUE_LENGTH);
    if (problem) return problem;
  }
  if (JSON.stringify(metadata).length > MAX_METADATA_LENGTH) return `The metadata must be at most ${MAX_METADATA_LENGTH} characters as JSON.`;
  return null;
}

import { z } from 'zod';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './pagination.js';

/**
 * Schemas several REST routes share: the error body, pages, the pagination query, and the
 * field messages Django REST framework clients match on. Each route's own schemas live next
 * to it (`*-schemas.ts`).
 */

export const REQUIRED = 'This field is required.';
export const MUST_BE_STRING = 'Must be a string.';
export const MUST_BE_BOOLEAN = 'Must be true or false.';
export const LIST_OF_STRINGS = 'Must be a list of strings.';

/** `message` for a wrong type, "This field is required." when the field is absent. */
export const requiredOr = (message: string) => (issue: { input?: unknown }) => (issue.input === undefined ? REQUIRED : message);

/** A non-empty string; absent or empty is "This field is required." (DRF's blank check). */
export const requiredString = () => z.string({ error: REQUIRED }).min(1, { error: REQUIRED });

export const listOfStrings = () => z.array(z.string({ error: LIST_OF_STRINGS }), { error: LIST_OF_STRINGS });

/** Every refusal of the REST API. */
export const ErrorBody = z
  .object({
    error: z.string().meta({ description: 'A stable code, e.g. invalid_request, invalid_token, permission_denied, not_found.' }),
    error_description: z.string(),
    fields: z.record(z.string(), z.array(z.string())).optional().meta({ description: 'Validation errors: one message list per bad field (as Django REST framework answers).' }),
    detail: z.string().optional().meta({ description: "Django REST framework's message (every refusal without field problems)." }),
    code: z.enum(['token_not_valid']).optional().meta({ description: 'A refused API JWT, as simplejwt says it.' }),
    messages: z.array(z.record(z.string(), z.string())).optional().meta({ description: "A refused bearer JWT, as simplejwt's JWTAuthentication lists why." }),
  })
  // DRF's field errors: each bad field's message list at the top level too.
  .catchall(z.array(z.string()))
  .meta({ id: 'Error' });

/** A page as DRF's PageNumberPagination answers: absolute `next`/`previous` links keep the query. */
export function pageOf<T extends z.ZodType>(id: string, item: T) {
  return z
    .object({
      count: z.int().min(0),
      next: z.url().nullable(),
      previous: z.url().nullable(),
      results: z.array(item),
    })
    .meta({ id });
}

const positive = (name: string) => `${name} must be a positive whole number.`;
/** A whole number from 1, in at most 9 digits; empty or absent is `fallback`. */
const pageNumber = (name: string, fallback: number, description: string) =>
  z
    .string({ error: positive(name) })
    .regex(/^((?=\d*[1-9])\d{1,9})?$/, { error: positive(name) })
    .optional()
    .transform((value) => (value ? Number(value) : fallback))
    .meta({ description });

/** `?page=` (from 1) and `?page_size=` (capped at MAX_PAGE_SIZE), as DRF reads them. */
export const PageQuery = z.object({
  page: pageNumber('page', 1, 'The page, from 1.'),
  page_size: pageNumber('page_size', DEFAULT_PAGE_SIZE, `Results per page (default ${DEFAULT_PAGE_SIZE}, at most ${MAX_PAGE_SIZE}).`).transform((size) =>
    Math.min(size, MAX_PAGE_SIZE),
  ),
});

/** A string query parameter, ignored when repeated (as before: only a single value counts). */
export const optionalQueryString = (description: string) => z.string().optional().catch(undefined).meta({ description });

/** An id in the path, as the router hands it over. */
export const pathId = (description: string) => z.string().meta({ description });

/** Time stamps as the API writes them (Date.toISOString). */
export const timestamp = () => z.iso.datetime();

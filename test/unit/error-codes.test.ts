import { describe, expect, it } from 'vitest';
import { DomainError, ERROR_CODES, FIELD_CODES, FIELD_MESSAGES, fieldProblem, InvalidInput, TooManyAttempts, type ErrorCode } from '../../src/core/errors.js';
import { InvalidApiToken } from '../../src/core/tokens/api-tokens.js';
import { translator } from '../../src/locales/i18n.js';
import { REST_ERRORS, restError } from '../../src/web/http/error-mapping.js';
import { FIELD_PAGE_MESSAGES, fieldMessage, PAGE_MESSAGES, pageMessage, problemOf } from '../../src/web/http/page-problem.js';

/** An error of each code, with the params its message needs. */
function sample(code: ErrorCode): DomainError {
  if (code === 'invalid_input') return InvalidInput.of('username', 'required');
  if (code === 'too_many_attempts' || code === 'too_many_email_changes') return new TooManyAttempts(90, code);
  return new DomainError(code, { fields: 'is_staff', detail: 'redirect_uris must be https' });
}

/** Where the pages say it in their own words rather than the services' (English differs). */
const PAGE_WORDING: readonly ErrorCode[] = ['invalid_input', 'too_many_attempts', 'too_many_email_changes', 'app_not_found', 'session_not_found'];

describe('domain error codes', () => {
  it('each has a REST status and error, and a page message in English and French', () => {
    const en = translator('en');
    const fr = translator('fr');
    expect(ERROR_CODES.length).toBeGreaterThan(20);
    for (const code of ERROR_CODES) {
      const error = sample(code);
      const rest = REST_ERRORS[code];
      expect(rest, code).toBeDefined();
      expect(rest.status, code).toBeGreaterThanOrEqual(400);
      expect(rest.status, code).toBeLessThan(500);
      expect(restError(error).toJSON(), code).toMatchObject({ error: rest.error, error_description: error.message });
      expect(PAGE_MESSAGES[code], code).toBeDefined();
      const english = pageMessage(error, en);
      const french = pageMessage(error, fr);
      for (const message of [english, french]) {
        expect(message, code).toBeTruthy();
        expect(message, code).not.toMatch(/\{\w+\}/);
      }
      expect(french, code).not.toBe(english);
      // English pages keep the services' words, except where they always had their own.
      if (!PAGE_WORDING.includes(code)) expect(english, code).toBe(error.message);
    }
  });

  it('answers a refused API JWT as simplejwt does: 401 invalid_token with detail and code', () => {
    const refused = restError(new InvalidApiToken('The token has expired.'));
    expect(refused.status).toBe(401);
    expect(refused.toJSON()).toEqual({
      error: 'invalid_token',
      error_description: 'The token has expired.',
      // simplejwt's one sentence whatever the reason; error_description says which.
      detail: 'Token is invalid or expired',
      code: 'token_not_valid',
    });
    // Only this code carries simplejwt's `code`; every refusal carries DRF's `detail`.
    expect(restError(new DomainError('user_not_found')).toJSON()).toEqual({ error: 'not_found', error_description: 'No such user.', detail: 'Not found.' });
  });

  it('keeps the REST body: fields as English lists, and Retry-After seconds', () => {
    const error = new InvalidInput({ password: [fieldProblem('password_too_short', { min: 8 })], email: [fieldProblem('email_invalid')] });
    expect(restError(error).status).toBe(400);
    expect(restError(error).toJSON()).toEqual({
      error: 'invalid_request',
      error_description: 'Invalid password, email.',
      fields: { password: ['Password must be at least 8 characters.'], email: ['Enter a valid email address.'] },
      // As DRF answers: each field's list at the top level too.
      password: ['Password must be at least 8 characters.'],
      email: ['Enter a valid email address.'],
    });
    const locked = new TooManyAttempts(61);
    expect(restError(locked).status).toBe(429);
    expect(locked.retryAfter).toBe(61);
    expect(problemOf(locked, translator('fr'))).toMatchObject({ status: 429, retryAfter: 61 });
  });

  it('each field code has an English message, and a page message in both languages where the pages show it', () => {
    for (const code of FIELD_CODES) {
      const problem = fieldProblem(code, { min: 8, max: 150, scope: 'x', permission: 'x' });
      expect(problem.message, code).toBeTruthy();
      expect(problem.message, code).not.toMatch(/\{\w+\}/);
      expect(FIELD_PAGE_MESSAGES, code).toHaveProperty(code);
      const key = FIELD_PAGE_MESSAGES[code];
      if (key === null) continue;
      expect(fieldMessage(problem, translator('en')), code).toBe(problem.message);
      expect(fieldMessage(problem, translator('fr')), code).not.toBe(problem.message);
    }
    expect(Object.keys(FIELD_MESSAGES)).toEqual(FIELD_CODES);
  });

  it('shows the English words on the English-only admin pages', () => {
    expect(problemOf(new DomainError('built_in_client'))).toEqual({ status: 403, message: 'Built-in clients are managed by Latchkey itself.', fields: {} });
    expect(problemOf(InvalidInput.of('identifier', 'uri_fragment'))).toEqual({
      status: 400,
      message: 'Please correct the fields marked below.',
      fields: { identifier: ['Must not contain a fragment (#).'] },
    });
    expect(() => problemOf(new Error('boom'))).toThrow('boom');
  });
});

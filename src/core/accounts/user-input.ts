import { normalizeUsername } from '../../storage/identity-keys.js';
import { fieldProblem, type FieldProblem } from '../errors.js';

/**
 * Django's username rule: letters, digits and @ . + - _, at most 150 characters, judged in
 * the NFKC form the name is stored in (normalizeUsername).
 */
export function usernameProblem(raw: string): FieldProblem | undefined {
  const username = normalizeUsername(raw);
  if (!username) return fieldProblem('username_required');
  if (username.length > 150) return fieldProblem('username_too_long', { max: 150 });
  if (!/^[\p{L}\p{N}@.+\-_]+$/u.test(username)) return fieldProblem('username_characters');
  return undefined;
}

/** Control characters (C0, DEL, C1): never part of a name or address a person typed. */
const CONTROL = /\p{Cc}/u;

/** A person's first or last name: at most 150 characters, no control characters. */
export function nameProblem(name: string): FieldProblem | undefined {
  if (name.length > 150) return fieldProblem('too_long', { max: 150 });
  if (CONTROL.test(name)) return fieldProblem('control_characters');
  return undefined;
}

/** A pragmatic email check: one @, something on each side, a dot in the domain, no spaces. */
export function emailProblem(email: string): FieldProblem | undefined {
  if (email.length > 254) return fieldProblem('email_too_long', { max: 254 });
  if (CONTROL.test(email)) return fieldProblem('email_invalid');
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) return fieldProblem('email_invalid');
  return undefined;
}

/** Django's username rule: letters, digits and @ . + - _, at most 150 characters. */
export function usernameProblem(username: string): string | undefined {
  if (!username) return 'Username is required.';
  if (username.length > 150) return 'Username must be at most 150 characters.';
  if (!/^[\p{L}\p{N}@.+\-_]+$/u.test(username)) return 'Username may contain only letters, digits and @ . + - _ characters.';
  return undefined;
}

/** A pragmatic email check: one @, something on each side, a dot in the domain, no spaces. */
export function emailProblem(email: string): string | undefined {
  if (email.length > 254) return 'Email must be at most 254 characters.';
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) return 'Enter a valid email address.';
  return undefined;
}

import { describe, expect, it } from 'vitest';
import { translateProblem } from '../../src/web/account-center/problems.js';
import { passwordProblem } from '../../src/core/accounts/password-policy.js';
import { emailProblem, usernameProblem } from '../../src/core/accounts/user-input.js';
import { translator } from '../../src/locales/i18n.js';

describe('service messages on the account pages', () => {
  it('has a French text for every problem the validators find in the fields those pages show', () => {
    const found = [
      usernameProblem(''),
      usernameProblem('x'.repeat(151)),
      usernameProblem('two words'),
      emailProblem('not-an-address'),
      emailProblem(`${'a'.repeat(250)}@example.com`),
      passwordProblem('short'),
      passwordProblem('x'.repeat(1025)),
      passwordProblem('password1'),
    ];
    const fr = translator('fr');
    const en = translator('en');
    for (const message of found) {
      expect(message).toBeDefined();
      expect(translateProblem(message!, fr), message).not.toBe(message);
      // English pages show the services' own words.
      expect(translateProblem(message!, en)).toBe(message);
    }
    expect(translateProblem('Password must be at least 8 characters.', fr)).toBe('Le mot de passe doit faire au moins 8 caractères.');
  });

  it('shows a message it does not know as it is', () => {
    expect(translateProblem('Something new.', translator('fr'))).toBe('Something new.');
  });
});

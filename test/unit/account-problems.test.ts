import { describe, expect, it } from 'vitest';
import { fieldMessage } from '../../src/web/http/page-problem.js';
import { passwordProblem } from '../../src/core/accounts/password-policy.js';
import { emailProblem, usernameProblem } from '../../src/core/accounts/user-input.js';
import { fieldProblem } from '../../src/core/errors.js';
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
    for (const problem of found) {
      expect(problem).toBeDefined();
      expect(fieldMessage(problem!, fr), problem!.message).not.toBe(problem!.message);
      // English pages show the services' own words.
      expect(fieldMessage(problem!, en)).toBe(problem!.message);
    }
    expect(fieldMessage(passwordProblem('short')!, fr)).toBe('Le mot de passe doit faire au moins 8 caractères.');
  });

  it('shows a problem the pages never meet in English, as the service says it', () => {
    expect(fieldMessage(fieldProblem('scope_oidc', { scope: 'openid' }), translator('fr'))).toBe('"openid" is an OpenID Connect scope; choose another name.');
  });
});

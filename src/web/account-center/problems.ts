import type { Translator } from '../../locales/i18n.js';
import { problemOf as pageProblemOf, type Problem } from '../http/page-problem.js';

/**
 * The account pages show the services' refusals in the page's language: the message of each
 * error code and field problem code (src/web/http/page-problem.ts), never matched by its
 * English text.
 */
export { problem, type Problem } from '../http/page-problem.js';

/** Maps the services' refusals to a status and translated messages; anything else is not ours to show. */
export function problemOf(error: unknown, i18n: Translator): Problem {
  return pageProblemOf(error, i18n);
}

import { Eta } from 'eta';
import { VIEWS_DIR } from '../paths.js';

/** Server-side templates from views/, HTML-escaped by default (`<%= %>`), cached. */
export type Views = { render(name: string, data: Record<string, unknown>): string };

export function createViews({ cache = true }: { cache?: boolean } = {}): Views {
  const eta = new Eta({ views: VIEWS_DIR, autoEscape: true, cache, autoTrim: false });
  return {
    render(name, data) {
      return eta.render(name, data);
    },
  };
}

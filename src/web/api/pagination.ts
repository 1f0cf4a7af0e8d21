import type { Context } from 'koa';

/** DRF's PageNumberPagination: the query is read by PageQuery (schemas.ts). */
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/** Absolute `next` and `previous` links keeping the other query parameters. */
export function pageLinks(ctx: Context, base: string, page: number, pageSize: number, count: number) {
  const link = (n: number) => {
    const url = new URL(base);
    for (const [key, value] of Object.entries(ctx.query)) if (typeof value === 'string') url.searchParams.set(key, value);
    url.searchParams.set('page', String(n));
    return url.href;
  };
  return {
    next: page * pageSize < count ? link(page + 1) : null,
    previous: page > 1 ? link(page - 1) : null,
  };
}

import type { Context } from 'koa';
import { ApiError } from '../../errors.js';

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

function positiveInt(value: unknown, name: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value) || Number(value) < 1) {
    throw new ApiError(400, 'invalid_request', `${name} must be a positive whole number.`);
  }
  return Number(value);
}

/** `?page=` (from 1) and `?page_size=` (capped at {@link MAX_PAGE_SIZE}), as DRF reads them. */
export function pageOf(ctx: Context): { page: number; pageSize: number } {
  return {
    page: positiveInt(ctx.query['page'], 'page', 1),
    pageSize: Math.min(positiveInt(ctx.query['page_size'], 'page_size', DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE),
  };
}

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

import { config } from '../config.ts';
import { BadRequest } from '../errors.ts';
import type { HttpEvent } from './response.ts';

export interface Page {
  limit: number;
  marker?: string;
}

/**
 * `limit` and `marker` as Trove reads them, capped at the page size. Trove itself answers 500
 * for `limit=abc` or `limit=0`; a clear 400 is what the client deserves.
 */
export function pageOf(event: HttpEvent): Page {
  const q = event.queryStringParameters ?? {};
  let limit = config.pageSize;
  if (q.limit !== undefined) {
    if (!/^\d+$/.test(q.limit) || Number(q.limit) < 1) {
      throw new BadRequest(`limit must be a positive integer, got '${q.limit}'.`);
    }
    limit = Math.min(Number(q.limit), config.pageSize);
  }
  return { limit, marker: q.marker || undefined };
}

/** The `links` sibling key Trove adds when more items follow: the current URL with the new marker. */
export function nextLinks(
  base: string,
  event: HttpEvent,
  requestedLimit: string | undefined,
  marker: string,
) {
  const params = new URLSearchParams(event.rawQueryString ?? '');
  params.delete('marker');
  if (requestedLimit !== undefined) params.set('limit', requestedLimit);
  params.set('marker', marker);
  return [{ rel: 'next', href: `${base}${event.rawPath}?${params.toString()}` }];
}

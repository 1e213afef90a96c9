import { config } from '../config.ts';
import { BadRequest } from '../errors.ts';
import type { Page, PageOf } from '../paging.ts';
import { baseUrl, type HttpEvent, json } from './response.ts';

export type { Page } from '../paging.ts';

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

/**
 * A list answer: the items under `key`, and when more follow, Trove's `links` sibling key (the
 * current URL with the new marker and the limit the client asked for).
 */
export function pageResponse<T>(event: HttpEvent, key: string, page: PageOf<T>, extra: object = {}) {
  const body: Record<string, unknown> = { [key]: page.items, ...extra };
  if (page.nextMarker) {
    body.links = nextLinks(baseUrl(event), event, event.queryStringParameters?.limit, page.nextMarker);
  }
  return json(200, body);
}

function nextLinks(base: string, event: HttpEvent, requestedLimit: string | undefined, marker: string) {
  const params = new URLSearchParams(event.rawQueryString ?? '');
  params.delete('marker');
  if (requestedLimit !== undefined) params.set('limit', requestedLimit);
  params.set('marker', marker);
  return [{ rel: 'next', href: `${base}${event.rawPath}?${params.toString()}` }];
}

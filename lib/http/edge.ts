import type { MiddlewareObj } from '@middy/core';
import { BadRequest, NotFound, TroveError } from '../errors.ts';
import { isSafeText, shown } from '../text.ts';
import { MAX_ID_LENGTH } from '../validation.ts';
import type { HttpEvent, HttpResult } from './response.ts';

// The edge: a handler serves a request only if the path it was sent is the path of the route it
// was given. A front end that resolves `..` (WHATWG URL parsing does, `%2e%2e` included) would
// otherwise route `DELETE /instances/{id}/databases/..` to `DELETE /instances/{id}`; an id that
// cannot exist must not reach DynamoDB, whose keys hold at most 1,024 bytes and never ''.

/** Decodes one path segment, or undefined when its percent-encoding is not valid UTF-8. */
export function decodeSegment(raw: string): string | undefined {
  if (/%(?![0-9A-Fa-f]{2})/.test(raw)) return undefined;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * Why a raw request path cannot be routed truthfully, or undefined when it can: a segment that
 * is `.` or `..` once decoded, an invalid percent-escape, a backslash (which URL parsers read
 * as `/`), or a character no id or name may hold.
 */
export function unroutablePath(rawPath: string): string | undefined {
  if (!rawPath.startsWith('/')) return 'The request path must start with /.';
  if (rawPath.includes('\\')) return 'The request path must not contain a backslash.';
  for (const raw of rawPath.split('/')) {
    const segment = decodeSegment(raw);
    if (segment === undefined) return 'The request path is not valid percent-encoded UTF-8.';
    if (segment === '.' || segment === '..') return 'The request path must not contain dot segments.';
    if (segment.includes('\\')) return 'The request path must not contain a backslash.';
  }
  return undefined;
}

/**
 * Whether `rawPath` is exactly `template` (e.g. `/v1.0/{project_id}/instances/{instance_id}`)
 * with `params` in its placeholders. Parameters may arrive decoded or not (API Gateway and
 * serverless-offline differ); either is accepted, nothing else. A prefix before the template
 * (a custom domain's base path) is allowed, and one trailing slash, as the front ends allow.
 */
export function pathMatchesRoute(
  rawPath: string,
  template: string,
  params: Record<string, string | undefined>,
): boolean {
  const want = template.split('/').slice(1);
  let have = rawPath.split('/').slice(1);
  if (have.length > 1 && have[have.length - 1] === '') have = have.slice(0, -1);
  if (have.length < want.length) return false;
  have = have.slice(have.length - want.length);
  return want.every((part, i) => {
    const raw = have[i] ?? '';
    const placeholder = /^\{(.+)\}$/.exec(part);
    if (!placeholder) return raw === part;
    const value = params[placeholder[1] ?? ''];
    return value !== undefined && value !== '' && (value === raw || value === decodeSegment(raw));
  });
}

/** Before anything else: refuse a path that is not the route's own (400), or an unknown method. */
export function routedPath(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    before: async (request) => {
      const event = request.event;
      const rawPath = event.rawPath ?? event.requestContext?.http?.path ?? '/';
      const why = unroutablePath(rawPath);
      if (why) throw new BadRequest(why);
      const routeKey = event.routeKey ?? '$default';
      if (routeKey === '$default') return;
      const [method, template = ''] = routeKey.split(' ');
      const sent = event.requestContext?.http?.method;
      if (sent && method !== 'ANY' && sent !== method) {
        throw new TroveError(405, `The method ${shown(sent)} is not allowed for this resource.`);
      }
      const params = event.pathParameters ?? {};
      if (!pathMatchesRoute(rawPath, template, params)) {
        throw new BadRequest('The request path does not match the route it was sent to.');
      }
      // Handlers read each parameter decoded exactly once, whatever the front end did.
      const decoded: Record<string, string> = {};
      const have = rawPath.split('/').filter((s, i, all) => i < all.length - 1 || s !== '');
      const want = template.split('/');
      const offset = have.length - want.length;
      want.forEach((part, i) => {
        const name = /^\{(.+)\}$/.exec(part)?.[1];
        if (name) decoded[name] = decodeSegment(have[i + offset] ?? '') ?? '';
      });
      if (Object.keys(decoded).length) event.pathParameters = decoded;
    },
  };
}

// Every path parameter of the API, checked once here rather than in each handler: an id that
// cannot exist is the route's 404, a name no engine could hold is a 400, as the handlers' own
// checks answer. Trove's limits: Keystone project ids are 64 characters; database and user names
// are at most 64 (and `user@host` adds a host of up to 255); everything else is a UUID or a
// catalog id or name, at most 255.
type Check = { max: number; refuse: (value: string) => TroveError };
const missing = (v: string) => new NotFound(`Resource ${shown(v)} cannot be found.`);
const PARAMS: Record<string, Check> = {
  project_id: { max: 64, refuse: () => new NotFound('The resource could not be found.') },
  target_project_id: { max: 64, refuse: missing },
  instance_id: { max: MAX_ID_LENGTH, refuse: missing },
  backup_id: { max: MAX_ID_LENGTH, refuse: (v) => new NotFound(`Backup ${shown(v)} cannot be found.`) },
  configuration_id: { max: MAX_ID_LENGTH, refuse: missing },
  flavor_id: { max: MAX_ID_LENGTH, refuse: missing },
  module_id: {
    max: MAX_ID_LENGTH,
    refuse: (v) => new NotFound(`Module with ID ${shown(v)} could not be found.`),
  },
  datastore_id: {
    max: MAX_ID_LENGTH,
    refuse: (v) => new NotFound(`Datastore '${shown(v)}' cannot be found.`),
  },
  version_id: {
    max: MAX_ID_LENGTH,
    refuse: (v) => new NotFound(`Datastore version '${shown(v)}' cannot be found.`),
  },
  name: {
    max: MAX_ID_LENGTH,
    refuse: (v) => new NotFound(`No configuration parameter found by name ${shown(v)}.`),
  },
  database: { max: 64, refuse: (v) => new BadRequest(`'${shown(v)}' is not a valid database name.`) },
  user: { max: 64 + 1 + 255, refuse: (v) => new BadRequest(`'${shown(v)}' is not a valid user name.`) },
};

/** Throws the route's own answer for a path parameter no item could have. */
export function checkPathParameters(params: Record<string, string | undefined> | undefined): void {
  for (const [name, value] of Object.entries(params ?? {})) {
    const check = PARAMS[name] ?? { max: MAX_ID_LENGTH, refuse: missing };
    if (value === undefined) continue;
    if (value === '' || value.length > check.max || !isSafeText(value)) throw check.refuse(value);
  }
}

// Query parameters that reach a key or a filter: ids and names, bounded as path ids are.
const QUERY_LIMITS: Record<string, number> = {
  project_id: 64,
  instance_id: MAX_ID_LENGTH,
  marker: MAX_ID_LENGTH,
  datastore: MAX_ID_LENGTH,
  all_projects: 16,
  limit: 16,
};

/**
 * A query parameter the API reads that no id could match is a malformed request (400). An empty
 * id filter (`?instance_id=`) is no filter: it is removed, so it never becomes an empty key.
 */
export function checkQueryParameters(query: Record<string, string | undefined> | undefined): void {
  for (const [name, value] of Object.entries(query ?? {})) {
    const max = QUERY_LIMITS[name];
    if (max === undefined || value === undefined) continue;
    if (value === '' && name !== 'limit') {
      delete query?.[name];
      continue;
    }
    if (value.length > max || !isSafeText(value)) {
      throw new BadRequest(`The query parameter ${name} is not valid.`);
    }
  }
}

/** After authentication: path and query parameters bounded before any handler reads them. */
export function boundedParameters(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    before: async (request) => {
      checkPathParameters(request.event.pathParameters);
      checkQueryParameters(request.event.queryStringParameters);
    },
  };
}

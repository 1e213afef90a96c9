import { unroutablePath } from '../http/edge.ts';
import { checkToken } from '../identity/tokens.ts';
import { isSafeText } from '../text.ts';
import * as mistral from './service.ts';

// The subset of Mistral's v2 API (the catalog's `workflowv2`) that python-troveclient's backup
// schedule commands use through python-mistralclient: cron triggers (create, list, show, delete)
// and executions (list, show, delete). Authenticated by the API's own Keystone tokens; a token
// reaches its own project's triggers and executions only. Mistral's error body
// (`faultstring`, which mistralclient shows), never a 500 of the API's.

export interface MistralRequest {
  method: string;
  rawPath: string;
  query: Record<string, string | undefined>;
  token?: string;
  body?: string;
}

export interface MistralResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export function mistralError(
  status: number,
  message: string,
  headers?: Record<string, string>,
): MistralResponse {
  return {
    status,
    body: { faultcode: status < 500 ? 'Client' : 'Server', faultstring: message, debuginfo: null },
    headers,
  };
}

// Mistral resources this subset does not serve: a read of them is 501, not a 404 that would
// read as "no such thing".
const OTHER_RESOURCES = new Set([
  'workbooks',
  'workflows',
  'actions',
  'tasks',
  'action_executions',
  'environments',
  'event_triggers',
  'services',
  'members',
  'code_sources',
  'dynamic_actions',
]);

type Route = (req: MistralRequest, project: string, id?: string) => Promise<MistralResponse>;

const ROUTES: Record<string, { collection: Record<string, Route>; item: Record<string, Route> }> = {
  cron_triggers: {
    collection: {
      GET: async (_r, p) => ({ status: 200, body: { cron_triggers: await mistral.listTriggers(p) } }),
      POST: async (r, p) => ({ status: 201, body: await mistral.createTrigger(p, parseBody(r.body)) }),
    },
    item: {
      GET: async (_r, p, id) => ({ status: 200, body: await mistral.showTrigger(p, id!) }),
      DELETE: async (_r, p, id) => {
        await mistral.deleteTrigger(p, id!);
        return { status: 204 };
      },
    },
  },
  executions: {
    collection: {
      GET: async (r, p) => ({ status: 200, body: { executions: await mistral.listExecutions(p, r.query) } }),
    },
    item: {
      GET: async (_r, p, id) => ({ status: 200, body: await mistral.showExecution(p, id!) }),
      DELETE: async (r, p, id) => {
        await mistral.deleteExecution(p, id!, /^true$/i.test(r.query.force ?? ''));
        return { status: 204 };
      },
    },
  },
};

class BodyError extends Error {}

function parseBody(body: string | undefined): unknown {
  try {
    return JSON.parse(body ?? '');
  } catch {
    throw new BodyError('Malformed request body: not JSON.');
  }
}

/** `/v2[/<resource>[/<id>]]`, the id decoded once; undefined when no path of Mistral's. */
function parsePath(rawPath: string): { resource?: string; id?: string; rest?: boolean } | undefined {
  if (unroutablePath(rawPath)) return undefined;
  const match = /^\/v2(?:\/([^/]+)(?:\/([^/]+)(\/.*)?)?)?\/?$/.exec(rawPath);
  if (!match) return undefined;
  try {
    const id = match[2] === undefined ? undefined : decodeURIComponent(match[2]);
    if (id !== undefined && (id.length === 0 || id.length > 255 || !isSafeText(id))) return undefined;
    return { resource: match[1], id, rest: match[3] !== undefined };
  } catch {
    return undefined;
  }
}

export async function serveMistral(request: MistralRequest): Promise<MistralResponse> {
  const method = request.method.toUpperCase();
  if (!request.token) return mistralError(401, 'The request you have made requires authentication.');
  const check = await checkToken(request.token);
  if (!check.ok) return mistralError(401, 'The request you have made requires authentication.');
  const path = parsePath(request.rawPath);
  if (!path) return mistralError(400, 'The request path is not valid.');
  if (path.resource === undefined) {
    return method === 'GET'
      ? { status: 200, body: { uri: request.rawPath.replace(/\/$/, '') } }
      : mistralError(405, `Method ${method} is not allowed here.`, { allow: 'GET' });
  }
  const routes = ROUTES[path.resource];
  if (!routes) {
    if (OTHER_RESOURCES.has(path.resource)) {
      return mistralError(
        501,
        `Only cron triggers and executions of ${'trove.backup_create'} are served here.`,
      );
    }
    return mistralError(404, `The resource could not be found: ${path.resource}`);
  }
  if (path.rest) return mistralError(501, `Only cron triggers and executions themselves are served here.`);
  const table = path.id === undefined ? routes.collection : routes.item;
  const route = table[method];
  if (!route) {
    return mistralError(405, `Method ${method} is not allowed here.`, {
      allow: Object.keys(table).join(', '),
    });
  }
  try {
    return await route(request, check.claims.project_id, path.id);
  } catch (err) {
    if (err instanceof BodyError) return mistralError(400, err.message);
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return mistralError(status, (err as Error).message);
    }
    throw err;
  }
}

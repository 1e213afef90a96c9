import { inject } from 'vitest';

export const cloud = () => inject('cloud');
export const api = () => cloud().endpoints.api;

/**
 * python-openstackclient's auth flags for `user` in its own project through our Keystone, exactly
 * as the README tells users to run it.
 */
export function openstackAuth(user = 'admin', password = user): string[] {
  const auth = {
    'os-auth-url': `${api()}/v3`,
    'os-identity-api-version': '3',
    'os-username': user,
    'os-password': password,
    'os-project-name': user,
    'os-user-domain-id': 'default',
    'os-project-domain-id': 'default',
    'os-region-name': 'RegionOne',
  };
  return Object.entries(auth).flatMap(([k, v]) => [`--${k}`, v]);
}

const DAY_MS = 86_400_000;

/**
 * The engines a long per-engine e2e flow (replication, backups, failover) runs in one suite run.
 * `TROVELESS_E2E_ENGINES` picks them (`all`, or a comma list such as `mysql,redis`); by default
 * one engine per flow, turning with the UTC day and shifted by `turn` per file, so that CI stays
 * within its time, each run still covers every engine across the flows, and each flow meets every
 * engine every third day. `TROVELESS_E2E_ENGINES=all npm test` runs every flow on every engine.
 */
export function e2eEngines<T extends { datastore: string }>(all: T[], turn: number): T[] {
  const raw = process.env.TROVELESS_E2E_ENGINES?.trim();
  if (raw === 'all') return all;
  if (raw) {
    const names = raw.split(',').map((s) => s.trim());
    const unknown = names.filter((n) => !all.some((e) => e.datastore === n));
    if (unknown.length) throw new Error(`TROVELESS_E2E_ENGINES: unknown ${unknown.join(', ')}`);
    return all.filter((e) => names.includes(e.datastore));
  }
  const day = Math.floor(Date.now() / DAY_MS);
  return [all[(day + turn) % all.length] as T];
}

export interface Login {
  token: string;
  projectId: string;
  body: Record<string, unknown>;
}

export async function login(username: string, password: string, project = username): Promise<Login> {
  const res = await fetch(`${api()}/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: username, password, domain: { id: 'default' } } },
        },
        scope: { project: { name: project, domain: { id: 'default' } } },
      },
    }),
  });
  if (res.status !== 201) throw new Error(`login ${username}: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { token: { project: { id: string } } };
  return { token: res.headers.get('x-subject-token') ?? '', projectId: body.token.project.id, body };
}

export async function call(method: string, path: string, token?: string, body?: string | object) {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers['x-auth-token'] = token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${api()}${path}`, {
    method,
    headers,
    body: typeof body === 'string' ? body : body === undefined ? undefined : JSON.stringify(body),
    // A request the cloud never answers fails by itself, inside the wait or test that made it.
    signal: AbortSignal.timeout(120_000),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return {
    status: res.status,
    headers: res.headers,
    json: json as Record<string, unknown> | undefined,
    text,
  };
}

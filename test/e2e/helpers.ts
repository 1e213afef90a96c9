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

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { waitUntil } from '../../local/wait.ts';
import { api, call, type Login, login } from './helpers.ts';
import { healthy, type InstanceView, waitForInstance } from './instance-helpers.ts';

// The description the running API serves (GET /openapi.json), held to the answers the same API
// gives: each recorded response must validate against the schema the document states for its
// route and status (or the default fault body), read back from the document's own JSON Schema.
// The routes are called here, one instance serving those that need one (it builds while the
// others are called), so that every operation with a body is recorded at least once.

type Json = Record<string, unknown>;
type Content = Record<string, { schema: Json }>;
type Operation = { responses: Record<string, { content?: Content }> };
let doc: { openapi: string; paths: Record<string, Record<string, Operation>> };
let admin: Login;
let instance: InstanceView | undefined;

/** "METHOD /template" of every success answer checked against the document. */
const covered = new Set<string>();

/** What the document states for one answer; throws when it states no such answer at all. */
function answerFor(path: string, method: string, status: number) {
  const op = doc.paths[path]?.[method.toLowerCase()];
  if (!op) throw new Error(`${method} ${path} is not in the document`);
  const answer = op.responses[String(status)] ?? (status >= 400 ? op.responses.default : undefined);
  if (!answer) throw new Error(`${method} ${path} states no ${status} answer`);
  return answer;
}

interface Sent {
  body?: object;
  headers?: Record<string, string>;
  token?: string | null;
}

async function send(method: string, path: string, { body, headers = {}, token = admin?.token }: Sent) {
  const res = await fetch(`${api()}${path}`, {
    method,
    headers: {
      accept: 'application/json',
      ...(token ? { 'x-auth-token': token } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json: Json | undefined;
  try {
    json = text ? (JSON.parse(text) as Json) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Calls the API, then checks the answer against the document; returns it for further checks. */
async function recorded(method: string, template: string, path: string, sent: Sent = {}) {
  const res = await send(method, path, sent);
  const where = `${method} ${path} → ${res.status} ${res.text.slice(0, 300)}`;
  const content = answerFor(template, method, res.status).content;
  const json = content?.['application/json']?.schema;
  if (json) {
    const checked = z.fromJSONSchema(json).safeParse(res.json);
    expect(checked.error?.issues ?? [], where).toEqual([]);
  } else if (content) {
    const [media = ''] = Object.keys(content);
    expect(res.headers.get('content-type'), where).toContain(media);
  } else {
    expect(res.text, `${where}: the document states no body`).toBe('');
  }
  // A fault answered through `default` does not count; a stated one (show database's 501) does.
  if (doc.paths[template]?.[method.toLowerCase()]?.responses[String(res.status)]) {
    covered.add(`${method} ${template}`);
  }
  return res;
}

const t = '/v1.0/{project_id}';
const ti = `${t}/instances/{instance_id}`;
let p: string;
const pi = () => `${p}/instances/${instance?.id}`;

beforeAll(async () => {
  const res = await call('GET', '/openapi.json');
  expect(res.status).toBe(200);
  doc = res.json as typeof doc;
  admin = await login('admin', 'admin');
  p = `/v1.0/${admin.projectId}`;
  // The one instance: it builds while the routes that need none are recorded.
  const created = await recorded('POST', `${t}/instances`, `${p}/instances`, {
    body: {
      instance: { name: 'e2e-openapi', flavorRef: '7', volume: { size: 1 }, datastore: { type: 'mysql' } },
    },
  });
  expect(created.status).toBe(200);
  instance = (created.json as { instance: InstanceView }).instance;
});

afterAll(async () => {
  if (!instance) return;
  await call('DELETE', pi(), admin.token);
  await waitForInstance(admin, instance.id, 'gone');
});

describe('GET /openapi.json and /docs', () => {
  it('serve an OpenAPI 3.1 description and a page of it, with no token', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const page = await recorded('GET', '/docs', '/docs', { token: null });
    expect(page.status).toBe(200);
    expect(page.text).toContain('POST /v1.0/{project_id}/instances</code>');
    expect((await recorded('GET', '/openapi.json', '/openapi.json', { token: null })).status).toBe(200);
    expect((await recorded('GET', '/', '/', { token: null })).status).toBe(200);
    expect((await recorded('OPTIONS', '/', '/', { token: null })).status).toBe(200);
  });
});

describe('the answers the API really gives', () => {
  it("Keystone's routes, in Keystone's shapes", async () => {
    expect((await recorded('GET', '/v3', '/v3', { token: null })).status).toBe(200);
    const auth = (name: string, password: string) => ({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name, password, domain: { id: 'default' } } },
        },
        scope: { project: { name, domain: { id: 'default' } } },
      },
    });
    const issued = await recorded('POST', '/v3/auth/tokens', '/v3/auth/tokens', {
      token: null,
      body: auth('admin', 'admin'),
    });
    expect(issued.status).toBe(201);
    const subject = { 'x-subject-token': issued.headers.get('x-subject-token') ?? '' };
    const tokens = '/v3/auth/tokens';
    expect((await recorded('GET', tokens, tokens, { headers: subject })).status).toBe(200);
    expect((await recorded('DELETE', tokens, tokens, { headers: subject })).status).toBe(204);
    const unknown = { 'x-subject-token': 'not-a-token' };
    expect((await recorded('GET', tokens, tokens, { headers: unknown })).status).toBe(404);
    expect(
      (await recorded('POST', tokens, tokens, { token: null, body: auth('nobody', 'wrong') })).status,
    ).toBe(401);
    expect((await recorded('GET', '/v3/projects', '/v3/projects')).status).toBe(200);
    const project = `/v3/projects/${admin.projectId}`;
    expect((await recorded('GET', '/v3/projects/{project_id}', project)).status).toBe(200);
    const userId = (admin.body.token as { user: { id: string } }).user.id;
    expect((await recorded('GET', '/v3/users/{user_id}', `/v3/users/${userId}`)).status).toBe(200);
  });

  it('the catalog: datastores, versions, parameters and flavors', async () => {
    const listed = await recorded('GET', `${t}/datastores`, `${p}/datastores`);
    expect(listed.status).toBe(200);
    const stores = (listed.json as { datastores: { id: string; name: string; default_version: string }[] })
      .datastores;
    const mysql = stores.find((d) => d.name === 'mysql');
    expect(mysql?.default_version).toBeDefined();
    const ds = `${p}/datastores/${mysql?.id}`;
    const vid = mysql?.default_version;
    const dv = `${t}/datastores/{datastore_id}/versions`;
    const byId = `${t}/datastores/versions/{version_id}`;
    expect((await recorded('GET', `${t}/datastores/{datastore_id}`, ds)).status).toBe(200);
    expect((await recorded('GET', dv, `${ds}/versions`)).status).toBe(200);
    expect((await recorded('GET', `${dv}/{version_id}`, `${ds}/versions/${vid}`)).status).toBe(200);
    expect(
      (await recorded('GET', `${dv}/{version_id}/flavors`, `${ds}/versions/${vid}/flavors`)).status,
    ).toBe(200);
    const types = await recorded(
      'GET',
      `${dv}/{version_id}/volume-types`,
      `${ds}/versions/${vid}/volume-types`,
    );
    expect(types.status).toBe(200);
    const params = await recorded('GET', `${dv}/{version_id}/parameters`, `${ds}/versions/${vid}/parameters`);
    expect(params.status).toBe(200);
    const [first] = (params.json as { 'configuration-parameters': { name: string }[] })[
      'configuration-parameters'
    ];
    const one = `${ds}/versions/${vid}/parameters/${first?.name}`;
    expect((await recorded('GET', `${dv}/{version_id}/parameters/{name}`, one)).status).toBe(200);
    const v = `${p}/datastores/versions/${vid}`;
    expect((await recorded('GET', byId, v)).status).toBe(200);
    expect((await recorded('GET', `${byId}/parameters`, `${v}/parameters`)).status).toBe(200);
    const oneById = `${v}/parameters/${first?.name}`;
    expect((await recorded('GET', `${byId}/parameters/{name}`, oneById)).status).toBe(200);
    expect((await recorded('GET', `${t}/flavors`, `${p}/flavors`)).status).toBe(200);
    expect((await recorded('GET', `${t}/flavors/{flavor_id}`, `${p}/flavors/7`)).status).toBe(200);

    const mgmt = `${t}/mgmt/datastore-versions`;
    expect((await recorded('GET', mgmt, `${p}/mgmt/datastore-versions`)).status).toBe(200);
    expect(
      (await recorded('GET', `${mgmt}/{version_id}`, `${p}/mgmt/datastore-versions/${vid}`)).status,
    ).toBe(200);
    const flavor = await recorded('POST', `${t}/mgmt/flavors`, `${p}/mgmt/flavors`, {
      body: { flavor: { name: 'e2e-openapi', ram: 256, vcpus: 1, disk: 1 } },
    });
    expect(flavor.status).toBe(202);
    const flavorId = (flavor.json as { flavor: { str_id: string } }).flavor.str_id;
    const made = `${p}/mgmt/flavors/${flavorId}`;
    expect((await recorded('DELETE', `${t}/mgmt/flavors/{flavor_id}`, made)).status).toBe(202);
  });

  it('lists, limits, quotas and configuration groups', async () => {
    expect((await recorded('GET', `${t}/instances`, `${p}/instances?limit=2`)).status).toBe(200);
    expect((await recorded('GET', `${t}/instances/detail`, `${p}/instances/detail`)).status).toBe(200);
    expect((await recorded('GET', `${t}/backups`, `${p}/backups`)).status).toBe(200);
    expect((await recorded('GET', `${t}/limits`, `${p}/limits`)).status).toBe(200);
    const quotas = `${t}/mgmt/quotas/{target_project_id}`;
    const shown = await recorded('GET', quotas, `${p}/mgmt/quotas/${admin.projectId}`);
    expect(shown.status).toBe(200);
    const limit = (shown.json as { quotas: { resource: string; limit: number }[] }).quotas.find(
      (q) => q.resource === 'backups',
    )?.limit;
    // The same limit again: the answer is recorded and nothing changes.
    const set = await recorded('PUT', quotas, `${p}/mgmt/quotas/${admin.projectId}`, {
      body: { quotas: { backups: limit } },
    });
    expect(set.json).toEqual({ quotas: { backups: limit } });

    const c = `${t}/configurations`;
    expect((await recorded('GET', c, `${p}/configurations`)).status).toBe(200);
    const created = await recorded('POST', c, `${p}/configurations`, {
      body: {
        configuration: {
          name: 'e2e-openapi',
          values: { max_connections: 200 },
          datastore: { type: 'mysql' },
        },
      },
    });
    expect(created.status).toBe(200);
    const group = `${p}/configurations/${(created.json as { configuration: { id: string } }).configuration.id}`;
    const g = `${c}/{configuration_id}`;
    expect((await recorded('GET', g, group)).status).toBe(200);
    expect((await recorded('GET', `${g}/instances`, `${group}/instances`)).status).toBe(200);
    const values = (n: number) => ({ body: { configuration: { values: { max_connections: n } } } });
    expect((await recorded('PATCH', g, group, values(300))).status).toBe(200);
    expect((await recorded('PUT', g, group, values(400))).status).toBe(202);
    expect((await recorded('DELETE', g, group)).status).toBe(202);
  });

  it("one instance's routes: databases, users, root, TLS, configuration, backups and policy", async () => {
    const ready = await waitForInstance(admin, instance?.id ?? '', healthy);
    expect(ready?.status).toBe('ACTIVE');
    expect((await recorded('GET', ti, pi())).status).toBe(200);
    expect((await recorded('GET', `${ti}/ssl`, `${pi()}/ssl`)).status).toBe(200);
    expect((await recorded('GET', `${ti}/configuration`, `${pi()}/configuration`)).status).toBe(200);
    const mi = `${t}/mgmt/instances`;
    const mgmt = `${p}/mgmt/instances`;
    expect((await recorded('GET', mi, `${mgmt}?project_id=${admin.projectId}`)).status).toBe(200);
    expect((await recorded('GET', `${mi}/{instance_id}`, `${mgmt}/${instance?.id}`)).status).toBe(200);
    expect((await recorded('GET', `${mi}/{instance_id}/root`, `${mgmt}/${instance?.id}/root`)).status).toBe(
      200,
    );
    expect((await recorded('GET', `${ti}/log`, `${pi()}/log`)).status).toBe(200);
    const log = { body: { name: 'general', enable: 1 } };
    expect((await recorded('POST', `${ti}/log`, `${pi()}/log`, log)).status).toBe(200);
    expect((await recorded('GET', `${ti}/metrics`, `${pi()}/metrics`)).status).toBe(200);

    const tm = `${t}/modules`;
    const contents = Buffer.from('message=openapi').toString('base64');
    const made = await recorded('POST', tm, `${p}/modules`, {
      body: { module: { name: 'e2e-openapi', module_type: 'ping', contents, live_update: 1 } },
    });
    expect(made.status).toBe(200);
    const mid = (made.json as { module: { id: string } }).module.id;
    const mod = `${p}/modules/${mid}`;
    expect((await recorded('GET', tm, `${p}/modules`)).status).toBe(200);
    expect((await recorded('GET', `${tm}/{module_id}`, mod)).status).toBe(200);
    const rename = { body: { module: { description: 'openapi' } } };
    expect((await recorded('PUT', `${tm}/{module_id}`, mod, rename)).status).toBe(200);
    const apply = { body: { modules: [{ id: mid }] } };
    expect((await recorded('POST', `${ti}/modules`, `${pi()}/modules`, apply)).status).toBe(200);
    expect((await recorded('GET', `${ti}/modules`, `${pi()}/modules`)).status).toBe(200);
    expect((await recorded('GET', `${tm}/{module_id}/instances`, `${mod}/instances`)).status).toBe(200);
    const counted = await recorded('GET', `${tm}/{module_id}/instances`, `${mod}/instances?count_only=true`);
    expect(counted.status).toBe(200);
    expect((await recorded('DELETE', `${ti}/modules/{module_id}`, `${pi()}/modules/${mid}`)).status).toBe(
      200,
    );
    expect((await recorded('DELETE', `${tm}/{module_id}`, mod)).status).toBe(200);

    const db = { body: { databases: [{ name: 'appdb' }] } };
    expect((await recorded('POST', `${ti}/databases`, `${pi()}/databases`, db)).status).toBe(202);
    expect((await recorded('GET', `${ti}/databases`, `${pi()}/databases`)).status).toBe(200);
    expect((await recorded('GET', `${ti}/databases/{database}`, `${pi()}/databases/appdb`)).status).toBe(501);
    const user = { users: [{ name: 'alice', password: 'Pass-w0rd!', databases: [{ name: 'appdb' }] }] };
    expect((await recorded('POST', `${ti}/users`, `${pi()}/users`, { body: user })).status).toBe(202);
    expect((await recorded('GET', `${ti}/users`, `${pi()}/users`)).status).toBe(200);
    const u = `${ti}/users/{user}`;
    expect((await recorded('GET', u, `${pi()}/users/alice`)).status).toBe(200);
    expect((await recorded('GET', `${u}/databases`, `${pi()}/users/alice/databases`)).status).toBe(200);
    expect((await recorded('DELETE', u, `${pi()}/users/alice`)).status).toBe(202);
    expect((await recorded('GET', `${ti}/root`, `${pi()}/root`)).status).toBe(200);
    expect((await recorded('POST', `${ti}/root`, `${pi()}/root`)).status).toBe(200);
    expect((await recorded('DELETE', `${ti}/root`, `${pi()}/root`)).status).toBe(204);

    const policy = `${ti}/backup_policy`;
    const body = { backup_policy: { schedule: 'rate(1 day)', retention: { count: 1 } } };
    expect((await recorded('PUT', policy, `${pi()}/backup_policy`, { body })).status).toBe(200);
    expect((await recorded('GET', policy, `${pi()}/backup_policy`)).status).toBe(200);
    expect((await recorded('DELETE', policy, `${pi()}/backup_policy`)).status).toBe(202);

    const s = `${t}/backup_strategies`;
    const strategy = { backup_strategy: { swift_container: 'e2e-openapi', instance_id: instance?.id } };
    expect((await recorded('POST', s, `${p}/backup_strategies`, { body: strategy })).status).toBe(202);
    const scoped = `${p}/backup_strategies?instance_id=${instance?.id}`;
    expect((await recorded('GET', s, scoped)).status).toBe(200);
    expect((await recorded('DELETE', s, scoped)).status).toBe(202);

    const started = await recorded('POST', `${t}/backups`, `${p}/backups`, {
      body: { backup: { name: 'e2e-openapi', instance: instance?.id } },
    });
    expect(started.status).toBe(202);
    const backup = `${p}/backups/${(started.json as { backup: { id: string } }).backup.id}`;
    const done = await waitUntil(
      'the backup',
      async () => {
        const res = await recorded('GET', `${t}/backups/{backup_id}`, backup);
        const status = (res.json as { backup: { status: string } }).backup.status;
        if (status === 'FAILED') throw new Error(`backup failed: ${res.text}`);
        return status === 'COMPLETED' ? status : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(done).toBe('COMPLETED');
    expect((await recorded('GET', `${ti}/backups`, `${pi()}/backups`)).status).toBe(200);
    expect((await recorded('DELETE', `${t}/backups/{backup_id}`, backup)).status).toBe(202);
  }, 240_000);

  it('records the cluster routes on a Redis Cluster of three', async () => {
    const c = `${t}/clusters`;
    const member = { flavorRef: '7', volume: { size: 1 } };
    const created = await recorded('POST', c, `${p}/clusters`, {
      body: {
        cluster: {
          name: 'e2e-openapi',
          datastore: { type: 'redis', version: '7.0' },
          instances: [member, member, member],
        },
      },
    });
    expect(created.status, created.text).toBe(200);
    const cluster = `${p}/clusters/${(created.json as { cluster: { id: string } }).cluster.id}`;
    try {
      expect((await recorded('GET', c, `${p}/clusters`)).status).toBe(200);
      type Shown = { cluster: { task: { name: string }; instances: { id: string; status: string }[] } };
      const formed = await waitUntil(
        'the cluster to form',
        async () => {
          const { json } = await recorded('GET', `${c}/{cluster_id}`, cluster);
          const view = (json as Shown).cluster;
          if (view.instances.some((m) => m.status === 'ERROR')) throw new Error(JSON.stringify(view));
          return view.task.name === 'NONE' ? view : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 1000 },
      );
      const memberPath = `${cluster}/instances/${formed.instances[0]?.id}`;
      expect((await recorded('GET', `${c}/{cluster_id}/instances/{instance_id}`, memberPath)).status).toBe(
        200,
      );
      expect((await recorded('GET', `${c}/{cluster_id}/root`, `${cluster}/root`)).status).toBe(200);
      expect((await recorded('POST', `${c}/{cluster_id}/root`, `${cluster}/root`)).status).toBe(200);
      const reset = { body: { 'reset-status': {} } };
      expect((await recorded('POST', `${c}/{cluster_id}`, cluster, reset)).status).toBe(202);
      const m = `${t}/mgmt/clusters`;
      const any = cluster.replace('/clusters/', '/mgmt/clusters/');
      expect((await recorded('GET', m, `${p}/mgmt/clusters`)).status).toBe(200);
      expect((await recorded('GET', `${m}/{cluster_id}`, any)).status).toBe(200);
      const resetTask = { body: { 'reset-task': {} } };
      expect((await recorded('POST', `${m}/{cluster_id}/action`, `${any}/action`, resetTask)).status).toBe(
        202,
      );
    } finally {
      expect((await recorded('DELETE', `${c}/{cluster_id}`, cluster)).status).toBe(202);
      await waitUntil(
        'the cluster to go',
        async () => ((await send('GET', cluster, {})).status === 404 ? true : undefined),
        { timeoutMs: 180_000, intervalMs: 1000 },
      );
    }
  }, 300_000);

  it("answers faults with the document's fault body", async () => {
    expect((await recorded('GET', ti, `${p}/instances/no-such-instance`)).status).toBe(404);
    const bad = { body: { instance: {} } };
    expect((await recorded('POST', `${t}/instances`, `${p}/instances`, bad)).status).toBe(400);
    expect((await recorded('GET', '/v3/projects', '/v3/projects', { token: null })).status).toBe(401);
  });

  it('recorded an answer for every operation that states a body', () => {
    const withBody = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops)
        .filter(([, op]) => Object.entries(op.responses).some(([s, a]) => s !== 'default' && a.content))
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    expect(withBody.length).toBeGreaterThan(45);
    expect(withBody.filter((op) => !covered.has(op))).toEqual([]);
  });
});

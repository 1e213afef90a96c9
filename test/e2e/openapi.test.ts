import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { call, type Login, login } from './helpers.ts';

// The description the running API serves (GET /openapi.json), held to the answers the same API
// gives: each recorded response must validate against the schema the document states for its
// route and status (or the default fault body), read back from the document's own JSON Schema.

type Json = Record<string, unknown>;
type Operation = { responses: Record<string, { content?: { 'application/json': { schema: Json } } }> };
let doc: { openapi: string; paths: Record<string, Record<string, Operation>> };
let admin: Login;

/** The document's schema for one answer; undefined when the document states no body for it. */
function schemaFor(path: string, method: string, status: number): Json | undefined {
  const op = doc.paths[path]?.[method.toLowerCase()];
  if (!op) throw new Error(`${method} ${path} is not in the document`);
  const answer = op.responses[String(status)] ?? (status >= 400 ? op.responses.default : undefined);
  if (!answer) throw new Error(`${method} ${path} states no ${status} answer`);
  return answer.content?.['application/json'].schema;
}

/** Calls the API, then checks the answer against the document; returns it for further checks. */
async function recorded(method: string, template: string, path: string, body?: object) {
  const res = await call(method, path, admin.token, body);
  const schema = schemaFor(template, method, res.status);
  if (schema) {
    const checked = z.fromJSONSchema(schema).safeParse(res.json);
    expect(checked.error?.issues ?? [], `${method} ${path} → ${res.status}`).toEqual([]);
  }
  return res;
}

beforeAll(async () => {
  const res = await call('GET', '/openapi.json');
  expect(res.status).toBe(200);
  doc = res.json as typeof doc;
  admin = await login('admin', 'admin');
});

describe('GET /openapi.json and /docs', () => {
  it('serve an OpenAPI 3.1 description and a page of it, with no token', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const page = await call('GET', '/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.text).toContain('POST /v1.0/{project_id}/instances</code>');
  });

  it('describe the answers the API really gives', async () => {
    const p = `/v1.0/${admin.projectId}`;
    const t = '/v1.0/{project_id}';
    expect((await recorded('GET', '/', '/')).status).toBe(200);
    expect((await recorded('GET', `${t}/flavors`, `${p}/flavors`)).status).toBe(200);
    expect((await recorded('GET', `${t}/flavors/{flavor_id}`, `${p}/flavors/7`)).status).toBe(200);
    expect((await recorded('GET', `${t}/datastores`, `${p}/datastores`)).status).toBe(200);
    expect((await recorded('GET', `${t}/limits`, `${p}/limits`)).status).toBe(200);
    expect((await recorded('GET', `${t}/instances`, `${p}/instances?limit=2`)).status).toBe(200);
    expect((await recorded('GET', `${t}/backups`, `${p}/backups`)).status).toBe(200);
    expect((await recorded('GET', `${t}/configurations`, `${p}/configurations`)).status).toBe(200);
    const quotas = `${t}/mgmt/quotas/{target_project_id}`;
    expect((await recorded('GET', quotas, `${p}/mgmt/quotas/${admin.projectId}`)).status).toBe(200);
    // Faults: Trove's body, as the document's default answer says.
    const i = `${t}/instances/{instance_id}`;
    expect((await recorded('GET', i, `${p}/instances/no-such-instance`)).status).toBe(404);
    expect((await recorded('POST', `${t}/instances`, `${p}/instances`, { instance: {} })).status).toBe(400);
  });
});

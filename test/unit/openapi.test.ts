import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { openApiDocument } from '../../lib/openapi/document.ts';
import { docsPage } from '../../lib/openapi/page.ts';

const root = resolve(import.meta.dirname, '../..');

// The routes whose success answer has no body, and why; every other deployed route must state the
// schema of its body, so that the e2e check can hold each recorded answer to it.
const NO_BODY: Record<string, string> = {
  'DELETE /v3/auth/tokens': '204, as Keystone',
  'PUT /v1.0/{project_id}/instances/{instance_id}': '202 with an empty body, as Trove',
  'PATCH /v1.0/{project_id}/instances/{instance_id}': '202 with an empty body, as Trove',
  'DELETE /v1.0/{project_id}/instances/{instance_id}': '202 with an empty body, as Trove',
  'POST /v1.0/{project_id}/instances/{instance_id}/action': '202 with an empty body, as Trove',
  'POST /v1.0/{project_id}/instances/{instance_id}/databases': '202, a guest cast',
  'DELETE /v1.0/{project_id}/instances/{instance_id}/databases/{database}': '202, a guest cast',
  'POST /v1.0/{project_id}/instances/{instance_id}/users': '202, a guest cast',
  'PUT /v1.0/{project_id}/instances/{instance_id}/users': '202, a guest cast',
  'PUT /v1.0/{project_id}/instances/{instance_id}/users/{user}': '202, a guest cast',
  'DELETE /v1.0/{project_id}/instances/{instance_id}/users/{user}': '202, a guest cast',
  'PUT /v1.0/{project_id}/instances/{instance_id}/users/{user}/databases': '202, a guest call',
  'DELETE /v1.0/{project_id}/instances/{instance_id}/users/{user}/databases/{database}': '202, a guest call',
  'DELETE /v1.0/{project_id}/instances/{instance_id}/root': '204, as Trove',
  'DELETE /v1.0/{project_id}/backups/{backup_id}': '202 with an empty body, as Trove',
  'DELETE /v1.0/{project_id}/backup_strategies': '202 with an empty body, as Trove',
  'DELETE /v1.0/{project_id}/instances/{instance_id}/backup_policy': '202 with an empty body',
  'PATCH /v1.0/{project_id}/configurations/{configuration_id}': '200 with an empty body, as Trove',
  'PUT /v1.0/{project_id}/configurations/{configuration_id}': '202 with an empty body, as Trove',
  'DELETE /v1.0/{project_id}/configurations/{configuration_id}': '202 with an empty body, as Trove',
  'DELETE /v1.0/{project_id}/modules/{module_id}': '200 with an empty body, as Trove',
  'PUT /v1.0/{project_id}/modules/{module_id}/instances': '202 with an empty body, as Trove (a cast)',
  'DELETE /v1.0/{project_id}/instances/{instance_id}/modules/{module_id}': '200 with an empty body, as Trove',
  'POST /v1.0/{project_id}/mgmt/datastore-versions': '202 with an empty body, as Trove',
  'PATCH /v1.0/{project_id}/mgmt/datastore-versions/{version_id}': '202 with an empty body, as Trove',
  'DELETE /v1.0/{project_id}/mgmt/datastore-versions/{version_id}': '202 with an empty body, as Trove',
  'DELETE /v1.0/{project_id}/datastores/{datastore_id}': '202 with an empty body, as Trove',
  'DELETE /v1.0/{project_id}/mgmt/flavors/{flavor_id}': '202 with an empty body',
  'POST /v1.0/{project_id}/mgmt/instances/{instance_id}/action': '202 with an empty body, as Trove',
  'POST /v1.0/{project_id}/mgmt/clusters/{cluster_id}/action':
    '202 with an empty body, as Trove (reset-task)',
  'DELETE /v1.0/{project_id}/clusters/{cluster_id}': '202 with an empty body, as Trove',
};

// Trove 18's own answers, as recorded (../shared/trove-samples 01, 04, 21, 25, 33, 10; sample 27's
// flavor is held to its view in catalog-views.test.ts).
const TROVE_ANSWERS: { sample: string; method: string; path: string; status: number; body: unknown }[] = [
  {
    sample: '01-versions',
    method: 'GET',
    path: '/',
    status: 200,
    body: {
      versions: [
        {
          id: 'v1.0',
          status: 'CURRENT',
          updated: '2012-08-01T00:00:00Z',
          links: [{ rel: 'self', href: 'http://127.0.0.1:43100/v1.0/' }],
        },
      ],
    },
  },
  {
    sample: '04-instance-create',
    method: 'POST',
    path: '/v1.0/{project_id}/instances',
    status: 200,
    body: {
      instance: {
        id: '21f4d520-b176-4059-bddf-92c33b9a41bb',
        name: 'db1',
        status: 'BUILD',
        operating_status: '',
        links: [
          {
            href: 'https://127.0.0.1:43100/v1.0/6a1c0d9bb3e94f0c9d2a7b1e5f3c8d21/instances/21f4d520-b176-4059-bddf-92c33b9a41bb',
            rel: 'self',
          },
          { href: 'https://127.0.0.1:43100/instances/21f4d520-b176-4059-bddf-92c33b9a41bb', rel: 'bookmark' },
        ],
        flavor: {
          id: '2',
          links: [
            { href: 'https://127.0.0.1:43100/v1.0/6a1c0d9bb3e94f0c9d2a7b1e5f3c8d21/flavors/2', rel: 'self' },
            { href: 'https://127.0.0.1:43100/flavors/2', rel: 'bookmark' },
          ],
        },
        datastore: { type: 'mysql', version: '5.7.29', version_number: '5.7.29' },
        region: 'RegionOne',
        access: {},
        volume: { size: 1 },
        created: '2026-11-21T02:13:56',
        updated: '2026-11-21T02:13:56',
        service_status_updated: '2026-11-21T02:13:56',
      },
    },
  },
  {
    sample: '21-datastore-versions',
    method: 'GET',
    path: '/v1.0/{project_id}/datastores/{datastore_id}/versions',
    status: 200,
    body: {
      versions: [
        {
          id: '8db5c0c5-ce8b-4a6f-afd5-302fe664ab7f',
          name: '5.7.29',
          version: '5.7.29',
          links: [
            {
              href: 'https://127.0.0.1:43100/v1.0/6a1c0d9bb3e94f0c9d2a7b1e5f3c8d21/datastores/versions/8db5c0c5-ce8b-4a6f-afd5-302fe664ab7f',
              rel: 'self',
            },
            {
              href: 'https://127.0.0.1:43100/datastores/versions/8db5c0c5-ce8b-4a6f-afd5-302fe664ab7f',
              rel: 'bookmark',
            },
          ],
          datastore: '6b438257-f5f4-452c-8809-2fc82c441547',
        },
      ],
    },
  },
  {
    sample: '25-datastore-version-param-show',
    method: 'GET',
    path: '/v1.0/{project_id}/datastores/{datastore_id}/versions/{version_id}/parameters/{name}',
    status: 200,
    body: {
      name: 'max_connections',
      datastore_version_id: '8db5c0c5-ce8b-4a6f-afd5-302fe664ab7f',
      restart_required: false,
      type: 'integer',
      max: 100000,
      min: 1,
    },
  },
  {
    sample: '33-configuration-show',
    method: 'GET',
    path: '/v1.0/{project_id}/configurations/{configuration_id}',
    status: 200,
    body: {
      configuration: {
        id: 'c9445bdb-889f-4b62-a003-3edb51d4da59',
        name: 'cfg1',
        description: 'test',
        values: { max_connections: 200 },
        created: '2026-11-21T02:14:08',
        updated: '2026-11-21T02:14:08',
        instance_count: 0,
        datastore_name: 'mysql',
        datastore_version_id: '8db5c0c5-ce8b-4a6f-afd5-302fe664ab7f',
        datastore_version_name: '5.7.29',
        datastore_version_number: '5.7.29',
      },
    },
  },
  {
    sample: '10-instance-show-unknown',
    method: 'GET',
    path: '/v1.0/{project_id}/instances/{instance_id}',
    status: 404,
    body: {
      itemNotFound: { code: 404, message: 'Resource 00000000-0000-0000-0000-000000000000 cannot be found.' },
    },
  },
];

/** Every `httpApi` route the template declares ("METHOD /path"), the catch-all left out. */
async function templateRoutes(): Promise<string[]> {
  const dir = join(root, 'serverless/functions');
  const routes: string[] = [];
  for (const file of await readdir(dir)) {
    const functions = parse(await readFile(join(dir, file), 'utf8')) as Record<
      string,
      { events?: { httpApi?: { method: string; path: string } | string }[] }
    >;
    for (const fn of Object.values(functions)) {
      for (const event of fn.events ?? []) {
        const route =
          typeof event.httpApi === 'object' ? `${event.httpApi.method} ${event.httpApi.path}` : '';
        // The object-store endpoint (lib/logs/swift.ts) answers Swift's API, not Trove's: every
        // method reaches it so that a write is Swift's 405; it is no part of this description.
        // The workflowv2 endpoint (lib/mistral/) likewise answers Mistral's API.
        if (route && !route.startsWith('* /v1/') && !route.startsWith('* /v2')) routes.push(route);
      }
    }
  }
  return routes;
}

type Json = Record<string, unknown>;
type Answer = { content?: Record<string, { schema: Json }> };
type Operation = { responses: Record<string, Answer> };

describe('the OpenAPI description', () => {
  const doc = openApiDocument() as { openapi: string; paths: Record<string, Record<string, Operation>> };
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
  );

  it('is OpenAPI 3.1 and describes every route serverless.yml deploys', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const deployed = await templateRoutes();
    expect(deployed.length).toBeGreaterThan(60);
    expect(deployed.filter((r) => !documented.includes(r))).toEqual([]);
  });

  it('gives every body-taking route its request schema, generated from the zod schema it validates with', () => {
    const users = doc.paths['/v1.0/{project_id}/instances/{instance_id}/users']?.post as unknown as {
      requestBody: { content: { 'application/json': { schema: { required: string[] } } } };
    };
    expect(users.requestBody.content['application/json'].schema.required).toEqual(['users']);
  });

  it('states the body of every deployed route that answers with one (the exceptions say why they have none)', async () => {
    const withoutBody = (await templateRoutes()).filter((route) => {
      const [method = '', path = ''] = route.split(' ');
      const { default: _fault, ...success } = doc.paths[path]?.[method.toLowerCase()]?.responses ?? {};
      return !Object.values(success).some((answer) => answer.content);
    });
    expect(withoutBody.sort()).toEqual(Object.keys(NO_BODY).sort());
    for (const route of Object.keys(NO_BODY)) {
      const [method = '', path = ''] = route.split(' ');
      const statuses = Object.keys(doc.paths[path]?.[method.toLowerCase()]?.responses ?? {});
      expect(statuses, route).toContain(NO_BODY[route]?.slice(0, 3));
    }
  });

  it.each(TROVE_ANSWERS)(
    "holds Trove's own answer $sample to the schema it states",
    ({ method, path, status, body }) => {
      const op = doc.paths[path]?.[method.toLowerCase()];
      const answer = op?.responses[String(status)] ?? op?.responses.default;
      const schema = answer?.content?.['application/json']?.schema;
      expect(schema).toBeDefined();
      const checked = z.fromJSONSchema(schema as Json).safeParse(body);
      expect(checked.error?.issues ?? []).toEqual([]);
    },
  );

  it('renders a page naming every route, with no script or outside resource', () => {
    const page = docsPage(openApiDocument());
    for (const route of documented) {
      const [method, path = ''] = route.split(' ');
      expect(page).toContain(`${method} ${path.replaceAll('&', '&amp;')}`);
    }
    expect(page).not.toMatch(/<script|<link|src=|https?:\/\//);
  });
});

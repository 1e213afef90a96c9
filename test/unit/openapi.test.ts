import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { openApiDocument } from '../../lib/openapi/document.ts';
import { docsPage } from '../../lib/openapi/page.ts';

const root = resolve(import.meta.dirname, '../..');

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
        if (typeof event.httpApi === 'object') routes.push(`${event.httpApi.method} ${event.httpApi.path}`);
      }
    }
  }
  return routes;
}

describe('the OpenAPI description', () => {
  const doc = openApiDocument() as { openapi: string; paths: Record<string, Record<string, unknown>> };
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
    const users = doc.paths['/v1.0/{project_id}/instances/{instance_id}/users']?.post as {
      requestBody: { content: { 'application/json': { schema: { required: string[] } } } };
    };
    expect(users.requestBody.content['application/json'].schema.required).toEqual(['users']);
  });

  it('renders a page naming every route, with no script or outside resource', () => {
    const page = docsPage(openApiDocument());
    for (const route of documented) {
      const [method, path = ''] = route.split(' ');
      expect(page).toContain(`${method} ${path.replaceAll('&', '&amp;')}`);
    }
    expect(page).not.toMatch(/<script|<link|src=|https?:\/\//);
  });
});

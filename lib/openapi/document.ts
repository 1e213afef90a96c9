import { z } from 'zod';
import { ROUTES, type Route } from './routes.ts';

// The OpenAPI 3.1 description, generated from the zod schemas the routes validate with. OpenAPI
// 3.1's schema dialect is JSON Schema 2020-12, which is what zod 4's own z.toJSONSchema writes:
// no translation layer, no second copy of any shape.

type Json = Record<string, unknown>;

/** Requests as the client writes them (before defaults and transforms), answers as it reads them. */
const schemaOf = (schema: z.ZodType, io: 'input' | 'output'): Json => {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json;
  return rest;
};

const content = (schema: Json, media = 'application/json') => ({ [media]: { schema } });

function operation(route: Route): Json {
  const params = [...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
    name,
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  return {
    tags: [route.tag],
    summary: route.summary,
    ...(route.public ? { security: [] } : {}),
    ...(params.length ? { parameters: params } : {}),
    ...(route.body
      ? { requestBody: { required: true, content: content(schemaOf(route.body, 'input')) } }
      : {}),
    responses: {
      [route.status]: {
        description: route.summary,
        ...(route.response ? { content: content(schemaOf(route.response, 'output'), route.media) } : {}),
      },
      default: { description: 'The fault body', content: content(schemaOf(route.fault, 'output')) },
    },
  };
}

let built: Json | undefined;

export function openApiDocument(): Json {
  if (built) return built;
  const paths: Record<string, Json> = {};
  for (const route of ROUTES) {
    paths[route.path] = { ...paths[route.path], [route.method.toLowerCase()]: operation(route) };
  }
  built = {
    openapi: '3.1.0',
    info: {
      title: 'Troveless',
      version: '1.0',
      description: "OpenStack Trove's v1.0 database API (with Keystone v3's token routes) on AWS Lambda.",
    },
    security: [{ keystoneToken: [] }],
    components: {
      securitySchemes: { keystoneToken: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' } },
    },
    paths,
  };
  return built;
}

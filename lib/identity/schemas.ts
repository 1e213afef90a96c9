import { z } from 'zod';
import { Link } from '../openapi/schemas.ts';

// Keystone v3's password method with project scope: the subset keystoneauth1 and the
// openstack CLI send (TROVE_API.md §13.1).
const NameOrId = z.object({ id: z.string().optional(), name: z.string().optional() });
export const AuthRequest = z.object({
  auth: z.object({
    identity: z.object({
      methods: z.array(z.string()).min(1),
      password: z
        .object({
          user: z.object({
            id: z.string().optional(),
            name: z.string().optional(),
            password: z.string(),
            domain: NameOrId.optional(),
          }),
        })
        .optional(),
    }),
    scope: z
      .object({
        project: z.object({
          id: z.string().optional(),
          name: z.string().optional(),
          domain: NameOrId.optional(),
        }),
      })
      .optional(),
  }),
});
export type AuthRequest = z.infer<typeof AuthRequest>;

// Answers, in Keystone's shapes (not Trove's), as the OpenAPI description states them
// (lib/openapi) and keystone.ts builds them.

/** Keystone's own error body: keystoneauth reads `error.message`. */
export const KeystoneError = z.object({
  error: z.object({ code: z.int(), message: z.string(), title: z.string() }),
});

export const KeystoneVersionResponse = z.object({
  version: z.looseObject({
    id: z.string(),
    status: z.string(),
    updated: z.string(),
    links: z.array(Link),
    'media-types': z.array(z.object({ base: z.string(), type: z.string() })),
  }),
});
export type KeystoneVersionResponse = z.infer<typeof KeystoneVersionResponse>;

const Ref = z.looseObject({ id: z.string(), name: z.string() });
const DomainRef = z.looseObject({ id: z.string(), name: z.string().optional() });
const Endpoint = z.looseObject({
  id: z.string(),
  interface: z.string(),
  region: z.string(),
  region_id: z.string(),
  url: z.string(),
});
export const CatalogEntry = z.looseObject({
  type: z.string(),
  name: z.string(),
  id: z.string(),
  endpoints: z.array(Endpoint),
});

/** A token as issued (POST, with its times and audit id) or validated (GET). */
export const TokenResponse = z.object({
  token: z.looseObject({
    methods: z.array(z.string()),
    expires_at: z.string().optional(),
    issued_at: z.string().optional(),
    audit_ids: z.array(z.string()).optional(),
    user: Ref.extend({ domain: DomainRef, password_expires_at: z.null().optional() }),
    project: Ref.extend({ domain: DomainRef }),
    roles: z.array(Ref),
    is_domain: z.boolean().optional(),
    catalog: z.array(CatalogEntry),
  }),
});
export type TokenResponse = z.infer<typeof TokenResponse>;

const selfLink = z.looseObject({ self: z.string() });
export const ProjectView = z.looseObject({
  id: z.string(),
  name: z.string(),
  domain_id: z.string(),
  description: z.string(),
  enabled: z.boolean(),
  parent_id: z.string(),
  is_domain: z.boolean(),
  tags: z.array(z.string()),
  options: z.looseObject({}),
  links: selfLink,
});
export type ProjectView = z.infer<typeof ProjectView>;
export const ProjectsResponse = z.object({
  projects: z.array(ProjectView),
  links: z.object({ self: z.string(), previous: z.string().nullable(), next: z.string().nullable() }),
});
export const ProjectResponse = z.object({ project: ProjectView });

export const UserView = z.looseObject({
  id: z.string(),
  name: z.string(),
  domain_id: z.string(),
  default_project_id: z.string().optional(),
  enabled: z.boolean(),
  password_expires_at: z.null(),
  options: z.looseObject({}),
  links: selfLink,
});
export type UserView = z.infer<typeof UserView>;
export const UserResponse = z.object({ user: UserView });

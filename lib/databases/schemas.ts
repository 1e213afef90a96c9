import { z } from 'zod';
import { Link } from '../openapi/schemas.ts';
import { safeText } from '../validation.ts';
import {
  type AccountRules,
  accountRulesFor,
  hostOrAny,
  nameProblem,
  type Problem,
  passwordProblem,
} from './rules/index.ts';

// Request bodies of the database, user and root routes (TROVE_API.md §4), declared once over the
// kind of each field. At the edge every field is text any engine could take (no name over 255
// characters, no control or bidi characters); once the instance, and so its engine, is known, the
// same requests are checked again with that engine's rules (rules/), the guest agent's own.
const text = safeText(255);

interface Fields {
  database: z.ZodString;
  user: z.ZodString;
  host: z.ZodString;
  password: z.ZodString;
}

function requests(f: Fields) {
  const named = z.object({ name: f.database });
  return {
    CreateDatabasesRequest: z.object({
      databases: z
        .array(
          z.object({
            name: f.database,
            character_set: safeText(32).optional(),
            collate: safeText(64).optional(),
          }),
        )
        .min(1),
    }),
    CreateUsersRequest: z.object({
      users: z
        .array(
          z.object({
            name: f.user,
            password: f.password,
            host: f.host.optional(),
            databases: z.array(named).optional(),
          }),
        )
        .min(1),
    }),
    UpdateUserRequest: z.object({
      user: z
        .object({ name: f.user.optional(), password: f.password.optional(), host: f.host.optional() })
        .refine((u) => u.name !== undefined || u.password !== undefined || u.host !== undefined, {
          message: 'must have at least one of name, password or host',
        }),
    }),
    ChangePasswordsRequest: z.object({
      users: z.array(z.object({ name: f.user, password: f.password, host: f.host.optional() })).min(1),
    }),
    GrantAccessRequest: z.object({ databases: z.array(named).min(1) }),
  };
}

export const {
  CreateDatabasesRequest,
  CreateUsersRequest,
  UpdateUserRequest,
  ChangePasswordsRequest,
  GrantAccessRequest,
} = requests({ database: text, user: text, host: text, password: text });
export type CreateDatabasesRequest = z.infer<typeof CreateDatabasesRequest>;
export type CreateUsersRequest = z.infer<typeof CreateUsersRequest>;
export type UpdateUserRequest = z.infer<typeof UpdateUserRequest>;
export type ChangePasswordsRequest = z.infer<typeof ChangePasswordsRequest>;
export type GrantAccessRequest = z.infer<typeof GrantAccessRequest>;

export const EnableRootRequest = z.object({ password: text.optional() }).optional();

/** A field refused in the rule's own words. */
const ruled = (problem: (value: string) => Problem) =>
  text.superRefine((value, ctx) => {
    const found = problem(value);
    if (found) ctx.addIssue({ code: 'custom', message: found });
  });

const byEngine = new Map<AccountRules, ReturnType<typeof requests>>();

/** The requests with the engine's own name, host and password rules on every field. */
export function requestsFor(manager: string): ReturnType<typeof requests> {
  const rules = accountRulesFor(manager);
  let found = byEngine.get(rules);
  if (!found) {
    found = requests({
      database: ruled((v) => nameProblem(v, rules.database)),
      user: ruled((v) => nameProblem(v, rules.user)),
      host: ruled((v) => rules.hostProblem(hostOrAny(v))),
      password: ruled(passwordProblem),
    });
    byEngine.set(rules, found);
  }
  return found;
}

// Answers, as the OpenAPI description states them (lib/openapi).
const links = z.array(Link);
export const DatabasesResponse = z.object({
  databases: z.array(
    z.looseObject({ name: z.string(), character_set: z.string().optional(), collate: z.string().optional() }),
  ),
  links: links.optional(),
});
export const UsersResponse = z.object({
  users: z.array(
    z.looseObject({ name: z.string(), host: z.string(), databases: z.array(z.object({ name: z.string() })) }),
  ),
  links: links.optional(),
});

export type DatabaseInfo = z.infer<typeof DatabasesResponse>['databases'][number];
export type UserInfo = z.infer<typeof UsersResponse>['users'][number];
export const UserResponse = z.object({ user: UsersResponse.shape.users.element });
/** `GET /users/{user}/databases`: the databases the user may use. */
export const AccessResponse = z.object({ databases: z.array(z.looseObject({ name: z.string() })) });
/** `GET /root`: whether root is enabled now, from the root history alone. */
export const RootStatusResponse = z.object({ rootEnabled: z.boolean() });
export type RootStatusResponse = z.infer<typeof RootStatusResponse>;
/** `POST /root`: the password is returned this once. */
export const RootEnabledResponse = z.object({ user: z.object({ name: z.string(), password: z.string() }) });
export type RootEnabledResponse = z.infer<typeof RootEnabledResponse>;

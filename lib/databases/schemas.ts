import { z } from 'zod';

// Request bodies of the database, user and root routes (TROVE_API.md §4). Names are checked
// per engine afterwards (names.ts); here only the shapes.
const named = z.object({ name: z.string() });

export const CreateDatabasesRequest = z.object({
  databases: z
    .array(
      z.object({
        name: z.string(),
        character_set: z.string().max(32).optional(),
        collate: z.string().max(64).optional(),
      }),
    )
    .min(1),
});

export const CreateUsersRequest = z.object({
  users: z
    .array(
      z.object({
        name: z.string(),
        password: z.string(),
        host: z.string().optional(),
        databases: z.array(named).optional(),
      }),
    )
    .min(1),
});

export const UpdateUserRequest = z.object({
  user: z
    .object({ name: z.string().optional(), password: z.string().optional(), host: z.string().optional() })
    .refine((u) => u.name !== undefined || u.password !== undefined || u.host !== undefined, {
      message: 'must have at least one of name, password or host',
    }),
});

export const ChangePasswordsRequest = z.object({
  users: z.array(z.object({ name: z.string(), password: z.string(), host: z.string().optional() })).min(1),
});

export const GrantAccessRequest = z.object({ databases: z.array(named).min(1) });

export const EnableRootRequest = z.object({ password: z.string().optional() }).optional();

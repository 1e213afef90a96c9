import { z } from 'zod';
import { safeText } from '../http/validation.ts';

// Request bodies of the database, user and root routes (TROVE_API.md §4). Names are checked
// per engine afterwards (names.ts); here the shapes and the bounds every engine shares: no name
// over 255 characters (`user@host` hosts included), no control or bidi characters.
const text = safeText(255);
const named = z.object({ name: text });

export const CreateDatabasesRequest = z.object({
  databases: z
    .array(
      z.object({
        name: text,
        character_set: safeText(32).optional(),
        collate: safeText(64).optional(),
      }),
    )
    .min(1),
});

export const CreateUsersRequest = z.object({
  users: z
    .array(
      z.object({
        name: text,
        password: text,
        host: text.optional(),
        databases: z.array(named).optional(),
      }),
    )
    .min(1),
});

export const UpdateUserRequest = z.object({
  user: z
    .object({ name: text.optional(), password: text.optional(), host: text.optional() })
    .refine((u) => u.name !== undefined || u.password !== undefined || u.host !== undefined, {
      message: 'must have at least one of name, password or host',
    }),
});

export const ChangePasswordsRequest = z.object({
  users: z.array(z.object({ name: text, password: text, host: text.optional() })).min(1),
});

export const GrantAccessRequest = z.object({ databases: z.array(named).min(1) });

export const EnableRootRequest = z.object({ password: text.optional() }).optional();

import { z } from 'zod';

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

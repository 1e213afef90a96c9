import { z } from 'zod';

// Request bodies of the configuration routes (TROVE_API.md §6).
const values = z.record(z.string(), z.unknown());

export const CreateConfigurationRequest = z.object({
  configuration: z.object({
    name: z.string().min(1).max(255),
    values,
    description: z.string().max(255).optional(),
    datastore: z
      .object({
        type: z.string().optional(),
        version: z.string().optional(),
        version_number: z.string().optional(),
      })
      .optional(),
  }),
});

export const PatchConfigurationRequest = z.object({ configuration: z.object({ values }) });

export const PutConfigurationRequest = z.object({
  configuration: z.object({
    values,
    name: z.string().min(1).max(255).optional(),
    description: z.string().max(255).optional(),
  }),
});

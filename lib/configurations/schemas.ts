import { z } from 'zod';
import { Link } from '../openapi/schemas.ts';
import { idRef, safeText } from '../validation.ts';

// Request bodies of the configuration routes (TROVE_API.md §6).
// Keys are parameter names (at most 255, as path parameter names are).
const values = z.record(safeText(255), z.unknown());

export const CreateConfigurationRequest = z.object({
  configuration: z.object({
    name: safeText(255).min(1),
    values,
    description: safeText(255).optional(),
    datastore: z
      .object({
        type: idRef().optional(),
        version: idRef().optional(),
        version_number: idRef().optional(),
      })
      .optional(),
  }),
});

export const PatchConfigurationRequest = z.object({ configuration: z.object({ values }) });

export const PutConfigurationRequest = z.object({
  configuration: z.object({
    values,
    name: safeText(255).min(1).optional(),
    description: safeText(255).optional(),
  }),
});

// Answers, as the OpenAPI description states them (lib/openapi).
const links = z.array(Link);
export const ConfigurationsResponse = z.object({
  configurations: z.array(z.looseObject({ id: z.string(), name: z.string() })),
  links: links.optional(),
});
